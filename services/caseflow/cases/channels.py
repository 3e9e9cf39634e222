"""Where a case is applied for (ADR 0026): online, at the hall's counter (一窗受理, 帮办) or at a
24-hour kiosk — the token's ``chn`` (ADR 0002's amendment), never the request body.

A counter token is the applicant's own (``sub``/``name`` the person's, verified in person), made by
the counter officer named in ``hlp``: the person stays the applicant, the officer is recorded as
the one who helped. A matter is applied for only through the channels its guide lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.auth import Principal
from kit.errors import Problem
from kit.text import text_problem

CHANNELS = ("online", "counter", "kiosk")
DEFAULT_CHANNELS = ["online", "counter"]  # contracts MatterPublished.channels' default (older guides)


def claimed_name(value: Any) -> str | None:
    """A name claim as shown: safe one-line text, or nothing (as submission's names)."""
    if not isinstance(value, str) or not value.strip() or text_problem(value, multiline=False) is not None:
        return None
    return value.strip()[:200]


@dataclass(frozen=True)
class Channel:
    name: str  # online | counter | kiosk | department
    helped_by: str | None = None
    helper_name: str | None = None

    def line_detail(self) -> dict[str, Any]:
        """What the submission's timeline line says of where and with whose help it was made."""
        if self.helped_by is None:
            return {"channel": self.name}
        return {"channel": self.name, "helped_by": self.helped_by, "helper_name": self.helper_name}


def _refused(rule: str, detail: str) -> Problem:
    return Problem(403, "channel-not-allowed", "Not allowed through this channel", detail, rule=rule)


def channel_of(principal: Principal) -> Channel:
    """The channel of the token (refused: an unknown ``chn``, a counter token without its officer)."""
    name = principal.channel or "online"
    if name not in CHANNELS:
        raise _refused("channel", f"a token of channel {name!r} does not apply for matters")
    if name != "counter":
        return Channel(name)
    helper = (principal.claims or {}).get("hlp")
    sub = helper.get("sub") if isinstance(helper, dict) else None
    if not isinstance(sub, str) or not sub.startswith("officer:") or len(sub) > 80:
        raise _refused("helper", "a counter token names the counter officer who helps (hlp.sub)")
    return Channel(name, helped_by=sub, helper_name=claimed_name(helper.get("name")))


def check_channel(principal: Principal, matter: dict[str, Any]) -> Channel:
    """The token's channel, if the matter's guide offers it (403 ``channels`` otherwise)."""
    channel = channel_of(principal)
    offered = matter.get("channels") or DEFAULT_CHANNELS
    if channel.name not in offered:
        raise _refused("channels", f"this matter is not applied for at the {channel.name} "
                                   f"(its guide offers: {', '.join(offered)})")  # fmt: skip
    return channel
