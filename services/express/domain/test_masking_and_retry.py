"""Masking of parties shown to supervisors, and the carrier retry schedule."""

from __future__ import annotations

import pytest

from services.express.domain.masking import mask_address, mask_party
from services.express.domain.retry import backoff_seconds


def test_an_address_keeps_its_divisions_and_hides_street_and_house():
    assert mask_address("山东省德州市德城区新华路1号") == "山东省德州市德城区****"
    assert mask_address("北京市朝阳区建国路88号SOHO现代城") == "北京市朝阳区****"
    assert mask_address("内蒙古自治区呼和浩特市新城区").startswith("内蒙古自治区")
    assert "1号" not in mask_address("某某路1号")  # nothing recognisable: most of it hidden
    assert mask_address("") == ""


def test_a_party_is_masked_with_the_kit_rules():
    assert mask_party("张三丰", "13800138000", "山东省德州市德城区新华路1号") == (
        "张**", "138****8000", "山东省德州市德城区****",
    )  # fmt: skip
    assert mask_party("SCJGJ", None, None) == ("S****", None, None)


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [backoff_seconds(n, base=5, cap=600) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 320, 600]
    assert backoff_seconds(1000, base=5, cap=600) == 600
    assert backoff_seconds(2, base=5, cap=600, jitter=1.2) == 12
    with pytest.raises(ValueError):
        backoff_seconds(0, base=5, cap=600)
