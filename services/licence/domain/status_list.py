"""The signed status list an offline verifier caches to learn which licences were revoked,
suspended or replaced since they were printed.

    status list = COSE_Sign1( CBOR {1: issuer, 2: issued_at, 3: next_update, 4: {identifier: status}} )

Times are Unix seconds; the map lists only licences that are NOT in force (absence means "not
listed as of issued_at"). Identifiers are listed rather than bits set in a bitstring, because
GB/T 36904 serials are issuer-chosen text, not a dense index a bitstring could address; the list
stays small because revocations are rare, and the whole document is deflated when it is served.
A verifier refuses a list past its next_update (StaleStatusList) unless told to accept it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import cbor2

from services.licence.domain.cose import DECODE_ERRORS, sign1, verify1
from services.licence.domain.errors import BadEncoding, LicenceRuleError, StaleStatusList
from services.licence.domain.identifier import is_valid_identifier
from services.licence.domain.signing import KeySet, Signer

_ISSUER, _ISSUED_AT, _NEXT_UPDATE, _ENTRIES = 1, 2, 3, 4
MAX_DOCUMENT = 64 * 1024 * 1024  # inflated; about 800,000 listed identifiers
_FIELD = "status_list"


class LicenceStatus(IntEnum):
    """Why a listed licence is not in force."""

    REVOKED = 1  # 吊销 / 撤销 / 注销: withdrawn for good
    SUSPENDED = 2  # 暂扣: held for a time, may come back
    SUPERSEDED = 3  # a newer version of the same licence was issued (变更/换发)


@dataclass(frozen=True, slots=True)
class StatusList:
    """A verified status list."""

    issuer: str
    issued_at: datetime
    next_update: datetime
    entries: Mapping[str, LicenceStatus]
    kid: str

    def status_of(self, identifier: str) -> LicenceStatus | None:
        """The listed status of ``identifier``; None when it is not listed (in force as of issued_at)."""
        return self.entries.get(identifier)


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise LicenceRuleError(_FIELD, "timezone", "status list times carry a time zone")
    return int(moment.timestamp())


def build_status_list(
    *,
    issuer: str,
    issued_at: datetime,
    next_update: datetime,
    entries: Mapping[str, LicenceStatus],
    signer: Signer,
) -> bytes:
    """Sign a status list; the returned bytes are zlib-deflated COSE_Sign1, ready to serve or cache."""
    if next_update <= issued_at:
        raise LicenceRuleError("next_update", "order", "next_update comes after issued_at")
    for identifier, status in entries.items():
        if not is_valid_identifier(identifier):
            raise LicenceRuleError("entries", "identifier", "every listed identifier is a valid GB/T 36904 identifier")
        if not isinstance(status, LicenceStatus):
            raise LicenceRuleError("entries", "status", "every status is a LicenceStatus")
    body = {
        _ISSUER: issuer,
        _ISSUED_AT: _seconds(issued_at),
        _NEXT_UPDATE: _seconds(next_update),
        _ENTRIES: {identifier: int(status) for identifier, status in sorted(entries.items())},
    }
    return zlib.compress(sign1(cbor2.dumps(body), signer), 9)


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(data, MAX_DOCUMENT)
    except zlib.error:
        raise BadEncoding(_FIELD, "deflate", "the status list is not deflated data") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadEncoding(_FIELD, "deflate", "the status list is damaged or too large")
    return inflated


def _time(body: Mapping[Any, Any], key: int, name: str) -> datetime:
    value = body.get(key)
    if type(value) is not int or not 0 <= value < 2**40:
        raise BadEncoding(_FIELD, "claims", f"{name} is not a time")
    return datetime.fromtimestamp(value, UTC)


def verify_status_list(data: bytes, key_set: KeySet, *, now: datetime, allow_stale: bool = False) -> StatusList:
    """Check a cached status list's signature and freshness. Raises BadEncoding, UnknownKey,
    BadSignature or StaleStatusList (past next_update, unless ``allow_stale``)."""
    key, payload = verify1(_inflate(data), key_set, field=_FIELD)
    try:
        body = cbor2.loads(payload)
    except DECODE_ERRORS:
        raise BadEncoding(_FIELD, "claims", "the status list body is not CBOR") from None
    if not isinstance(body, Mapping) or not isinstance(body.get(_ISSUER), str):
        raise BadEncoding(_FIELD, "claims", "the status list names no issuer")
    raw_entries = body.get(_ENTRIES)
    if not isinstance(raw_entries, Mapping):
        raise BadEncoding(_FIELD, "claims", "the status list has no entries map")
    entries: dict[str, LicenceStatus] = {}
    for identifier, status in raw_entries.items():
        if not isinstance(identifier, str) or status not in LicenceStatus._value2member_map_:
            raise BadEncoding(_FIELD, "claims", "an entry is not identifier -> known status")
        entries[identifier] = LicenceStatus(status)
    status_list = StatusList(
        issuer=body[_ISSUER],
        issued_at=_time(body, _ISSUED_AT, "issued_at"),
        next_update=_time(body, _NEXT_UPDATE, "next_update"),
        entries=entries,
        kid=key.kid,
    )
    if now.tzinfo is None:
        raise LicenceRuleError("now", "timezone", "the verification time carries a time zone")
    if now > status_list.next_update and not allow_stale:
        raise StaleStatusList(
            "next_update", "stale", f"the status list expired at {status_list.next_update.isoformat()}; fetch a new one"
        )
    return status_list
