"""An ID card's validity dates, and the hall's token claims, as pure rules."""

from datetime import UTC, date, datetime, timedelta

from services.identity.domain.claims import access_claims
from services.identity.domain.idcards import card_date_refusal, today_in_china


def test_card_dates():
    today = date(2026, 12, 1)
    assert card_date_refusal(date(2016, 12, 1), date(2026, 12, 1), today) is None  # the last day still counts
    assert card_date_refusal(date(2016, 12, 1), None, today) is None  # 长期
    assert card_date_refusal(date(2016, 11, 30), date(2026, 11, 30), today)[0] == "card_expired"
    assert card_date_refusal(date(2026, 12, 2), date(2046, 12, 2), today)[0] == "card_not_yet_valid"
    assert card_date_refusal(date(2026, 1, 1), date(2025, 1, 1), today)[0] == "card_dates"


def test_the_cards_day_is_beijings():
    assert today_in_china(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert today_in_china(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == date(2026, 11, 30)


def test_hall_tokens_have_a_channel_and_no_session():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    common = dict(subject="110101194505060013", kind="person", level=4, session_id=None, issuer="i", audience="a",
                  now=now, ttl=timedelta(minutes=30), name="刘老汉")  # fmt: skip
    helper = {"sub": "officer:liu", "name": "刘窗口", "dept": "ZWFW", "sid": "s-1"}
    counter = access_claims(**common, channel="counter", helper=helper)
    assert (counter["chn"], counter["hlp"], "sid" in counter, "dev" in counter) == ("counter", helper, False, False)
    kiosk = access_claims(**common, channel="kiosk", device="KIOSK-1")
    assert (kiosk["chn"], kiosk["dev"], "hlp" in kiosk) == ("kiosk", "KIOSK-1", False)
    online = access_claims(**{**common, "session_id": "s-9"}, channel="online")
    assert "chn" not in online and online["sid"] == "s-9"  # absent means online (ADR 0002)
