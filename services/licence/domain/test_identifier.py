"""GB/T 36904 identifiers against identifiers that real systems issued or a standard printed.

Where they come from (found with the code search over public GitHub sources; the index returned the
file text but not its repository, so the exact repository URL could not be recorded -- the search
ids are given so the next reader can open the same text):
- ZHEJIANG: an OFD file name on Zhejiang's investment-project approval platform,
  https://tzxm.zjzwfw.gov.cn/ + "2025/05/.../1.2.156.3005.2.11100000000013338W009.11330105002500287C
  .2025052201.002.0.OFD", quoted in a public repository's notes on that site (search id 16266310901).
- STANDARD_A2 / STANDARD_A2_V1: the examples of 《全国一体化政务服务平台 电子证照 建筑施工企业安全生产
  管理人员考核合格证书》 appendix A.2, quoted in a public client's doc comments (ids 52366588166,
  52155910804).
- JINING: a completion-filing licence pushed by 济宁市行政审批服务局's system (id 6351682452).
- HEFEI: a Hefei e-licence code in a public integration's test code (id 27283832573), with a
  6-digit division code as issuer code.
Not used: "…209FA4E88F9E4C878F3E9BED2CE7EA49.001.M", the placeholder in an API doc's example field
(id 49572249075): its check character does not come out (D, not M), so it is no real identifier.
Each of the five below confirms the rule: the check covers the parts without dots and prefix.
"""

from __future__ import annotations

import pytest

from services.licence.domain.errors import InvalidIdentifier
from services.licence.domain.identifier import (
    PREFIX,
    build_identifier,
    check_character,
    is_valid_identifier,
    mask_holder_code,
    parse_identifier,
)

ZHEJIANG = "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0"
STANDARD_A2 = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S"
STANDARD_A2_V1 = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
JINING = "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3"
HEFEI = "1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9"
PUBLISHED = [ZHEJIANG, STANDARD_A2, STANDARD_A2_V1, JINING, HEFEI]


@pytest.mark.parametrize("text", PUBLISHED)
def test_published_identifiers_validate(text):
    parsed = parse_identifier(text)
    assert str(parsed) == text
    assert is_valid_identifier(text)


def test_the_parts_of_a_published_identifier():
    parsed = parse_identifier(JINING)
    assert parsed.type_code == "11100000000013338W087"
    assert parsed.issuer_code == "11370800MB28559184"
    assert parsed.serial == "37080001202411010001"
    assert parsed.version == 1
    assert parsed.check == "3"


@pytest.mark.parametrize("text", PUBLISHED)
def test_building_from_the_parts_gives_the_published_check(text):
    parsed = parse_identifier(text)
    built = build_identifier(
        type_code=parsed.type_code, issuer_code=parsed.issuer_code, serial=parsed.serial, version=parsed.version
    )
    assert str(built) == text


def test_the_check_leaves_out_prefix_and_dots():
    # The other readings of the standard give other characters for the same published identifier.
    from stdnum.iso7064 import mod_37_36

    body = "11100000000013338W087" + "11370800MB28559184" + "37080001202411010001" + "001"
    assert (
        check_character(
            type_code="11100000000013338W087",
            issuer_code="11370800MB28559184",
            serial="37080001202411010001",
            version=1,
        )
        == "3"
    )
    assert mod_37_36.calc_check_digit(PREFIX.replace(".", "") + body) != "3"


def _replace(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


@pytest.mark.parametrize("text", PUBLISHED)
def test_any_single_character_changed_fails(text):
    start = len(PREFIX) + 1
    for index in range(start, len(text)):
        if text[index] == ".":
            continue
        for char in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            if char != text[index]:
                assert not is_valid_identifier(_replace(text, index, char)), (index, char)


@pytest.mark.parametrize("text", PUBLISHED)
def test_adjacent_characters_swapped_fail(text):
    start = len(PREFIX) + 1
    for index in range(start, len(text) - 1):
        a, b = text[index], text[index + 1]
        if a == b or "." in (a, b):
            continue
        swapped = text[:index] + b + a + text[index + 2 :]
        assert not is_valid_identifier(swapped), index


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("1.2.156.3005.1.11100000000013338W009.11330105002500287C.2025052201.002.0", "prefix"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002", "format"),
        ("1.2.156.3005.2.11100000000013338W00.11330105002500287C.2025052201.002.0", "type_code"),
        ("1.2.156.3005.2.11100000000013338W009.1133010500250028.2025052201.002.0", "issuer_code"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025_52201.002.0", "serial"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.000.0", "version"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.02.0", "version"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287c.2025052201.002.0", "issuer_code"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.1", "check"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.#", "check"),
        ("1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.*", "check"),
    ],
)
def test_malformed_identifiers_name_the_rule(text, rule):
    with pytest.raises(InvalidIdentifier) as caught:
        parse_identifier(text)
    assert caught.value.rule == rule
    assert caught.value.field == "identifier"


def test_hostile_input_is_refused_not_crashed():
    for text in ["", "1.2.156.3005.2." + "A" * 500, "1.2.156.3005.2.\ud800", None, 123]:
        assert not is_valid_identifier(text)  # type: ignore[arg-type]


def test_build_refuses_bad_parts():
    with pytest.raises(InvalidIdentifier):
        build_identifier(type_code="11100000000013338W009", issuer_code="11330105002500287C", serial="", version=1)
    with pytest.raises(InvalidIdentifier):
        build_identifier(type_code="11100000000013338W009", issuer_code="11330105002500287C", serial="1", version=1000)


def test_every_check_character_is_alphanumeric():
    # MOD 37,36 is hybrid: 36 possible check characters, never the "*" of MOD 37-2.
    seen = {
        build_identifier(
            type_code="11100000000013338W009", issuer_code="11330105002500287C", serial=f"{n:06d}", version=1
        ).check
        for n in range(2000)
    }
    assert seen == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_mask_holder_code():
    assert mask_holder_code("371402199001010012") == "3714**********0012"
    assert mask_holder_code("1234") == "****"


def test_rule_errors_become_problems_naming_field_and_rule():
    with pytest.raises(InvalidIdentifier) as caught:
        parse_identifier(HEFEI[:-1] + "0")
    body = caught.value.problem().body()
    assert body["status"] == 422
    assert body["errors"] == [
        {"field": "identifier", "rule": "check", "message": "the check character does not match (mistyped or altered)"}
    ]


def test_check_character_is_stdnums_mod_37_36():
    """The check character (computed in parts, the type and issuer codes' share cached) is the same
    as python-stdnum's MOD 37,36 over the whole string, for many random parts."""
    import random

    from stdnum.iso7064 import mod_37_36

    from services.licence.domain.identifier import check_character

    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rng = random.Random(36)
    for _ in range(2000):
        type_code = "".join(rng.choices(alphabet, k=18)) + f"{rng.randrange(1000):03d}"
        issuer_code = "".join(rng.choices(alphabet, k=18)) if rng.random() < 0.8 else f"{rng.randrange(10**6):06d}"
        serial = "".join(rng.choices(alphabet, k=rng.randint(1, 32)))
        version = rng.randint(1, 999)
        expected = mod_37_36.calc_check_digit(f"{type_code}{issuer_code}{serial}{version:03d}")
        assert check_character(type_code=type_code, issuer_code=issuer_code, serial=serial, version=version) == expected
        assert mod_37_36.is_valid(f"{type_code}{issuer_code}{serial}{version:03d}{expected}")
