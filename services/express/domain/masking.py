"""What a reader who may see a shipment but not its people (a supervisor) is shown — pure.

Names and phones are masked with kit.masking's rules (family name kept; 138****8000). An address
keeps its administrative part (province, city, district: up to the last 区/县/市/旗 within the first
12 characters) and hides the street and house, so a supervisor can still see where parcels go.
"""

from __future__ import annotations

from kit.masking import mask_name, mask_phone

_DIVISION_ENDS = "省市区县旗州盟"
_KEEP_AT_MOST = 12


def mask_address(address: str) -> str:
    """``山东省德州市德城区新华路1号`` → ``山东省德州市德城区****``."""
    head = address[:_KEEP_AT_MOST]
    cut = max((head.rfind(end) for end in _DIVISION_ENDS), default=-1)
    if cut < 0 or cut + 1 >= len(address):  # nothing recognisable: keep at most a third
        cut = len(address) // 3 - 1
    return address[: cut + 1] + "****" if address else address


def mask_party(name: str | None, phone: str | None, address: str | None) -> tuple[str | None, str | None, str | None]:
    """A sender's or recipient's name, phone and address as a third party sees them."""
    return (
        mask_name(name) if name else name,
        mask_phone(phone) if phone else phone,
        mask_address(address) if address else address,
    )
