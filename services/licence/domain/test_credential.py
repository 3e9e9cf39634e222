"""The QR credential: Base45 and COSE against their published examples, round trips, every refusal,
and the QR version a realistic business licence needs."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, date, datetime

import base45
import cbor2
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.licence.domain import cose
from services.licence.domain.credential import (
    PREFIX,
    LicenceClaims,
    claims_to_cbor,
    decode_and_verify,
    default_claims,
    encode,
)
from services.licence.domain.errors import (
    BadEncoding,
    BadSignature,
    Expired,
    LicenceRuleError,
    NotYetValid,
    UnknownKey,
)
from services.licence.domain.identifier import build_identifier
from services.licence.domain.signing import Ed25519Signer, KeySet

SIGNER = Ed25519Signer.generate(kid="yw25")
KEYS = KeySet.from_jwks({"keys": [SIGNER.public_jwk()]})
TODAY = date(2026, 12, 1)


def business_licence(**overrides) -> LicenceClaims:
    """A 营业执照 as a district approval bureau issues it, 16-character company name, default disclosure
    (type and issuer as the codes inside the identifier; their names are opt-in)."""
    values = dict(
        identifier=build_identifier(
            type_code="11100000000013338W001", issuer_code="11370102MB28559184", serial="2025000123", version=1
        ),
        licence_number="91370102MA3C8KXX1Q",
        holder_name="济南市历下区泉城示例科技有限公司",
        holder_code="91370102MA3C8KXX1Q",
        holder_is_person=False,
        issued_on=date(2025, 3, 1),
        valid_until=None,
        type_name=None,
        issuer_name=None,
    )
    values.update(overrides)
    return default_claims(**values)


# RFC 9285 section 4.3-4.4 examples.
@pytest.mark.parametrize(
    ("raw", "encoded"),
    [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"), (b"ietf!", "QED8WEX0")],
)
def test_base45_rfc9285_examples(raw, encoded):
    assert base45.b45encode(raw).decode() == encoded
    assert base45.b45decode(encoded) == raw


def test_sig_structure_matches_the_cose_wg_example():
    # cose-wg/Examples eddsa-examples/eddsa-sig-02.json (Ed448 Sign1): its ToBeSign bytes and signature.
    # https://github.com/cose-wg/Examples/blob/master/eddsa-examples/eddsa-sig-02.json
    to_be_signed = bytes.fromhex("846A5369676E61747572653143A101274054546869732069732074686520636F6E74656E742E")
    message = bytes.fromhex(
        "D28443A10127A10445336434343854546869732069732074686520636F6E74656E742E5872988240A3A2F189BD486DE14AA77F"
        "54686C576A09F2E7ED9BAE910DF9139C2AC3BE7C27B7E10A20FA17C9D57D3510A2CF1F634BC0345AB9BE00849842171D1E9E98"
        "B2674C0E38BFCF6C557A1692B01B71015A47AC9F7748840CAD1DA80CBB5B349309FEBB912672B377C8B2072AF1598B3700"
    )
    public = Ed448PublicKey.from_public_bytes(
        bytes.fromhex(
            "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778edf124769b46c7061bd6783df1e50f6cd1fa1abeafe8256180"
        )
    )
    protected, unprotected, payload, signature = cose._structure(message, "credential")
    assert unprotected == {4: b"3d448"}
    assert cose._sig_structure(protected, payload) == to_be_signed
    public.verify(signature, to_be_signed)  # raises if our Sig_structure were not the standard one


def test_round_trip():
    claims = business_licence()
    text = encode(claims, SIGNER)
    assert text.startswith(PREFIX)
    verified = decode_and_verify(text, KEYS, now=TODAY)
    assert verified.claims == claims
    assert verified.kid == "yw25"
    assert str(verified.claims.identifier).startswith("1.2.156.3005.2.11100000000013338W001.")
    assert verified.claims.as_dict()["holder_name"] == "济南市历下区泉城示例科技有限公司"
    # The business licence's number is the credit code, so it is not repeated as holder code.
    assert verified.claims.holder_code is None


def test_the_signature_is_a_standard_cose_sign1():
    """An independent COSE reader: decode by hand, rebuild Sig_structure, verify with the raw key."""
    data = base45.b45decode(encode(business_licence(), SIGNER)[len(PREFIX) :])
    if data[:1] == b"\x78":
        data = zlib.decompress(data)
    message = cbor2.loads(data)
    assert message.tag == 18
    protected, _unprotected, payload, signature = message.value
    assert cbor2.loads(protected) == {1: -8, 4: b"yw25"}
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(SIGNER.public_jwk()["x"] + "="))
    public.verify(signature, cbor2.dumps(["Signature1", protected, b"", payload]))


def test_realistic_business_licence_fits_qr_version_10_at_m():
    text = encode(business_licence(), SIGNER)
    qr = segno.make(text, error="m", boost_error=False)
    assert qr.mode == "alphanumeric"
    assert qr.version <= 10, (qr.version, len(text))


def test_with_type_and_issuer_names_it_needs_version_11():
    # Measured, so the ADR's figure stays true: the two names (4 + 13 Hanzi) cost one QR version.
    claims = business_licence(type_name="营业执照", issuer_name="济南市历下区行政审批服务局")
    text = encode(claims, SIGNER)
    assert segno.make(text, error="m", boost_error=False).version == 11
    assert decode_and_verify(text, KEYS, now=TODAY).claims.issuer_name == "济南市历下区行政审批服务局"


def test_person_licence_masks_the_id_number():
    claims = business_licence(
        licence_number="JY13701020012345",
        holder_name="张三",
        holder_code="371402199001010012",
        holder_is_person=True,
        type_name="食品经营许可证",
        valid_until=date(2030, 2, 28),
    )
    assert claims.holder_code == "3714**********0012"
    verified = decode_and_verify(encode(claims, SIGNER), KEYS, now=TODAY)
    assert verified.claims.holder_code == "3714**********0012"
    assert "371402199001010012" not in repr(verified)


def test_a_full_id_number_is_refused():
    claims = business_licence()
    leaking = LicenceClaims(
        identifier=claims.identifier,
        licence_number=claims.licence_number,
        holder_name="张三",
        issued_on=claims.issued_on,
        holder_code="371402199001010017",  # a valid GB 11643 number (check digit 7)
    )
    with pytest.raises(LicenceRuleError) as caught:
        encode(leaking, SIGNER)
    assert (caught.value.field, caught.value.rule) == ("holder_code", "unmasked_id_number")


def test_resident_id_guard_does_not_catch_credit_codes():
    from services.licence.domain.credential import looks_like_resident_id

    assert looks_like_resident_id("371402199001010017")
    assert looks_like_resident_id("11010519491231002X")  # GB 11643's own example
    assert not looks_like_resident_id("371402199001010012")  # wrong check digit
    assert not looks_like_resident_id("113700000045030270")  # an all-digit credit code
    assert not looks_like_resident_id("91370102MA3C8KXX1Q")


def test_flipping_any_payload_byte_breaks_it():
    text = encode(business_licence(), SIGNER)
    data = bytearray(base45.b45decode(text[len(PREFIX) :]))
    for index in range(len(data)):
        altered = bytearray(data)
        altered[index] ^= 0x01
        with pytest.raises((BadEncoding, BadSignature, UnknownKey, LicenceRuleError)):
            decode_and_verify(PREFIX + base45.b45encode(bytes(altered)).decode(), KEYS, now=TODAY)


def test_unknown_key():
    other = KeySet.from_jwks({"keys": [Ed25519Signer.generate(kid="other").public_jwk()]})
    with pytest.raises(UnknownKey):
        decode_and_verify(encode(business_licence(), SIGNER), other, now=TODAY)


def test_same_kid_other_key_is_a_bad_signature():
    impostor = KeySet.from_jwks({"keys": [Ed25519Signer.generate(kid="yw25").public_jwk()]})
    with pytest.raises(BadSignature):
        decode_and_verify(encode(business_licence(), SIGNER), impostor, now=TODAY)


def test_expiry_and_issue_date_use_china_dates():
    text = encode(business_licence(valid_until=date(2026, 11, 30)), SIGNER)
    decode_and_verify(text, KEYS, now=date(2026, 11, 30))
    # 2026-11-30 16:30 UTC is already 12-01 00:30 in China.
    with pytest.raises(Expired):
        decode_and_verify(text, KEYS, now=datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    with pytest.raises(NotYetValid):
        decode_and_verify(text, KEYS, now=date(2025, 2, 28))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("HC1:NCFOXN", "prefix"),
        ("YWL1:", "cbor"),
        ("YWL1:a", "base45"),
        ("YWL1:A", "base45"),
        ("YWL1:" + "0" * 5000, "length"),
        ("YWL1:" + base45.b45encode(b"\x78\x9c garbage").decode(), "deflate"),
        ("YWL1:" + base45.b45encode(zlib.compress(b"\x00" * 100_000)).decode(), "deflate"),
        ("YWL1:" + base45.b45encode(cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""]))).decode(), "cose"),
        ("YWL1:" + base45.b45encode(cbor2.dumps([b"\xa0", {}, b"", b""])).decode(), "kid"),
        ("YWL1:" + base45.b45encode(b"\x81" * 1000).decode(), "cbor"),
    ],
)
def test_bad_encodings_name_the_rule(text, rule):
    with pytest.raises(BadEncoding) as caught:
        decode_and_verify(text, KEYS, now=TODAY)
    assert caught.value.rule == rule


def test_signed_but_malformed_claims_are_bad_encoding():
    for payload in [cbor2.dumps([1]), cbor2.dumps({1: ["x", "y", "z", 1]}), b"\xff"]:
        text = PREFIX + base45.b45encode(cose.sign1(payload, SIGNER)).decode()
        with pytest.raises(BadEncoding):
            decode_and_verify(text, KEYS, now=TODAY)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"holder_name": ""}, "holder_name"),
        ({"holder_name": "甲\x00乙"}, "holder_name"),
        ({"holder_name": "\ud800"}, "holder_name"),
        ({"licence_number": "91370102 MA3C"}, "licence_number"),
        ({"valid_until": date(2020, 1, 1)}, "valid_until"),
    ],
)
def test_bad_claims_name_the_field(override, field):
    with pytest.raises(LicenceRuleError) as caught:
        claims_to_cbor(business_licence(**override))
    assert caught.value.field == field


def test_a_number_from_outside_is_checked_as_a_qr_carries_it():
    from services.licence.domain.credential import check_licence_number

    assert check_licence_number("(2026)DZ0000001") == "(2026)DZ0000001"
    for bad in ("鲁(2026)德州市不动产权第0000001号", "A" * 65, "", "11010519491231002X"):
        with pytest.raises(LicenceRuleError):
            check_licence_number(bad)
