"""实名认证 real-name levels and the ways to reach them."""

from __future__ import annotations

from enum import IntEnum

from kit.errors import Problem


class Level(IntEnum):
    REGISTERED = 1  # L1: registered with a valid ID number
    REGISTRY_VERIFIED = 2  # L2: name + number confirmed by the population registry
    FACE_VERIFIED = 3  # L3: face (or bank card) check
    COUNTER_VERIFIED = 4  # L4: verified in person at a counter


# The level each method grants and the level it requires first.
METHODS = {
    "registry": (Level.REGISTRY_VERIFIED, Level.REGISTERED),
    "face": (Level.FACE_VERIFIED, Level.REGISTRY_VERIFIED),
    "counter": (Level.COUNTER_VERIFIED, Level.REGISTERED),
}


def level_after(current: int, method: str) -> int:
    """The level after a successful check by ``method``; a check never lowers a level."""
    if method not in METHODS:
        raise Problem(422, "validation", "Unknown verification method", f"method: {method}")
    grants, requires = METHODS[method]
    if current < requires:
        raise Problem(
            409,
            "level-order",
            "Verification out of order",
            f"{method} verification needs level L{int(requires)} first; the account is L{current}",
        )
    return max(current, int(grants))
