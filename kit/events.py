"""The CloudEvents 1.0 envelope every event travels in, with W3C trace context."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit milliseconds, then randomness."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_traceparent() -> str:
    """A fresh W3C traceparent: version 00, random trace and span ids, sampled."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class EventData(BaseModel):
    """Base of every event payload in contracts/. Subclasses set the versioned type and subject."""

    model_config = ConfigDict(extra="forbid")

    event_type: ClassVar[str]  # e.g. "yiwang.identity.person.registered.v1"
    nats_subject: ClassVar[str]  # e.g. "identity.person.registered"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured-mode envelope (JSON), plus the traceparent extension."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid7()))
    source: str
    type: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str = Field(default_factory=new_traceparent)
    data: dict[str, Any]


def event_source(service: str) -> str:
    """The CloudEvents ``source`` of everything ``service`` publishes: ``/yiwang/<service>``.

    One spelling for every service (a URI reference, as CloudEvents asks), so a consumer or an
    operator reading the dead-letter stream can tell the publisher from the envelope alone.
    """
    if not service or "/" in service or "." in service:
        raise ValueError(f"not a service name: {service!r}")
    return f"/yiwang/{service}"


def publisher_of(event_type: str) -> str:
    """``yiwang.identity.person.registered.v1`` → ``identity``: the service the type belongs to."""
    return nats_subject_for(event_type).split(".", 1)[0]


def envelope(
    data: EventData, *, subject: str | None = None, source: str | None = None, traceparent: str | None = None
) -> CloudEvent:
    """Wrap a contract payload in a CloudEvent; ``subject`` is the entity it is about.

    ``source`` defaults to :func:`event_source` of the service the event type belongs to; only tests
    that pose as another publisher pass their own.
    """
    return CloudEvent(
        source=source or event_source(publisher_of(data.event_type)),
        type=data.event_type,
        subject=subject,
        traceparent=traceparent or new_traceparent(),
        data=data.model_dump(mode="json"),
    )


def nats_subject_for(event_type: str) -> str:
    """``yiwang.identity.person.registered.v1`` → ``identity.person.registered``."""
    parts = event_type.split(".")
    if len(parts) < 5 or parts[0] != "yiwang" or not parts[-1].startswith("v"):
        raise ValueError(f"not a yiwang event type: {event_type}")
    return ".".join(parts[1:-1])
