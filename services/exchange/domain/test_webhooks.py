"""The retry schedule, what an answer means, the order rule and what an endpoint may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.exchange.domain.webhooks import (
    DEAD,
    DEFAULT_SCHEDULE,
    DELIVERED,
    PENDING,
    Queued,
    is_success,
    max_attempts,
    retry_delay,
    secret_problem,
    sendable,
    url_problem,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_the_default_schedule_is_svix_s():
    assert DEFAULT_SCHEDULE == (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
    assert max_attempts(DEFAULT_SCHEDULE) == 8  # at once, then after each wait
    assert [retry_delay(n, DEFAULT_SCHEDULE) for n in range(1, 8)] == list(DEFAULT_SCHEDULE)
    assert retry_delay(8, DEFAULT_SCHEDULE) is None  # the last try failed: dead
    assert retry_delay(100, DEFAULT_SCHEDULE) is None


def test_jitter_scales_the_wait_and_attempts_count_from_one():
    assert retry_delay(2, DEFAULT_SCHEDULE, jitter=1.1) == pytest.approx(330)
    assert retry_delay(1, (0.5,), jitter=0.9) == pytest.approx(0.45)
    assert retry_delay(2, (0.5,)) is None
    with pytest.raises(ValueError):
        retry_delay(0, DEFAULT_SCHEDULE)


@pytest.mark.parametrize(("status", "ok"), [(200, True), (202, True), (204, True), (299, True), (None, False),
                                            (199, False), (301, False), (400, False), (410, False), (500, False),
                                            (503, False)])  # fmt: skip
def test_only_a_2xx_is_delivered(status, ok):
    assert is_success(status) is ok


def q(id: str, sequence: int, status: str = PENDING, *, key: str = "case:A", sub: str = "s1", due: int = 0) -> Queued:
    return Queued(id, sub, key, sequence, status, NOW + timedelta(seconds=due))


def ids(rows) -> list[str]:
    return [row.id for row in rows]


def test_only_the_first_pending_of_a_case_goes():
    rows = [q("a1", 1), q("a2", 2), q("a3", 3)]
    assert ids(sendable(rows, NOW)) == ["a1"]


def test_a_delivered_one_lets_the_next_go():
    assert ids(sendable([q("a1", 1, DELIVERED), q("a2", 2), q("a3", 3)], NOW)) == ["a2"]


def test_an_earlier_one_waiting_for_its_retry_holds_the_later_ones_back():
    rows = [q("a1", 1, due=300), q("a2", 2), q("a3", 3)]
    assert sendable(rows, NOW) == []  # nothing of case A goes before a1
    assert ids(sendable(rows, NOW + timedelta(seconds=300))) == ["a1"]


def test_a_dead_one_does_not_hold_its_case_back():
    assert ids(sendable([q("a1", 1, DEAD), q("a2", 2), q("a3", 3)], NOW)) == ["a2"]


def test_cases_and_subscriptions_are_independent():
    rows = [q("a1", 1, due=60), q("a2", 2), q("b1", 1, key="case:B"), q("x1", 1, sub="s2"), q("x2", 2, sub="s2")]
    assert ids(sendable(rows, NOW)) == ["b1", "x1"]


def test_a_replayed_earlier_one_goes_before_the_later_pending_ones():
    rows = [q("a1", 1, PENDING), q("a2", 2, DELIVERED), q("a3", 3, PENDING)]
    assert ids(sendable(rows, NOW)) == ["a1"]


@pytest.mark.parametrize(("url", "rule"), [
    ("https://bdc.dezhou.gov.cn/hooks", None),
    ("https://10.1.2.3:8443/yiwang?x=1", None),
    ("http://bdc.dezhou.gov.cn/hooks", "scheme"),
    ("ftp://bdc.dezhou.gov.cn/hooks", "scheme"),
    ("https:///nohost", "host"),
    ("https://user:pw@bdc.dezhou.gov.cn/", "userinfo"),
    ("https://bdc.dezhou.gov.cn/#frag", "fragment"),
    ("https://bdc.dezhou.gov.cn/a b", "characters"),
    ("https://bdc.dezhou.gov.cn/\x00", "characters"),
    ("https://bdc.dezhou.gov.cn/\ud800", "characters"),
    ("https://bdc.dezhou.gov.cn:99999/", "url"),
    ("https://bdc.dezhou.gov.cn/" + "a" * 500, "max_length"),
    ("not a url", "characters"),
    ("bdc.dezhou.gov.cn", "scheme"),
])  # fmt: skip
def test_an_endpoint_is_https(url, rule):
    problem = url_problem(url, allow_http=False)
    assert (problem[0] if problem else None) == rule


def test_plain_http_only_on_a_sandbox_platform():
    assert url_problem("http://127.0.0.1:8091/webhooks", allow_http=True) is None
    assert url_problem("ftp://127.0.0.1/", allow_http=True) == ("scheme", "http or https")


def test_a_secret_is_whsec_and_24_to_32_bytes_of_base64():
    import base64

    assert secret_problem("whsec_" + base64.b64encode(b"x" * 32).decode()) is None
    assert secret_problem("whsec_" + base64.b64encode(b"x" * 24).decode()) is None
    assert secret_problem(base64.b64encode(b"x" * 32).decode()) == "starts with whsec_"
    assert secret_problem("whsec_" + base64.b64encode(b"x" * 16).decode()) == "24 to 32 bytes"
    assert secret_problem("whsec_not base64!") == "base64 after the prefix"
