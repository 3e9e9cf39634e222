"""What an ID card read at a kiosk must satisfy before anyone is asked about it, no I/O.

A second-generation resident ID card (二代身份证) carries its validity as two dates, or an end of
``长期`` (long-term, given here as no end date). A card past its end date or not yet valid is
refused by the ID-card check service as well; refusing it first costs nothing and names the rule.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))  # the cards' dates are Beijing dates


def today_in_china(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def card_date_refusal(valid_from: date, valid_until: date | None, today: date) -> tuple[str, str] | None:
    """``(rule, detail)`` when the card is not valid on ``today``; None when it is."""
    if valid_until is not None and valid_until < valid_from:
        return "card_dates", "valid_until is before valid_from"
    if valid_from > today:
        return "card_not_yet_valid", f"the card is valid from {valid_from.isoformat()}"
    if valid_until is not None and valid_until < today:
        return "card_expired", f"the card expired on {valid_until.isoformat()}"
    return None
