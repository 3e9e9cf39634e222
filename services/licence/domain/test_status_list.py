"""The signed status list: round trip, freshness, tampering, foreign keys, hostile bytes."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pytest

from services.licence.domain.errors import BadEncoding, BadSignature, LicenceRuleError, StaleStatusList, UnknownKey
from services.licence.domain.identifier import build_identifier
from services.licence.domain.signing import Ed25519Signer, KeySet
from services.licence.domain.status_list import LicenceStatus, build_status_list, verify_status_list

SIGNER = Ed25519Signer.generate(kid="yw25")
KEYS = KeySet.from_jwks({"keys": [SIGNER.public_jwk()]})
ISSUED = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def ident(serial: str, version: int = 1) -> str:
    return str(
        build_identifier(
            type_code="11100000000013338W001", issuer_code="11370102MB28559184", serial=serial, version=version
        )
    )


ENTRIES = {
    ident("2025000001"): LicenceStatus.REVOKED,
    ident("2025000002"): LicenceStatus.SUSPENDED,
    ident("2025000003", 1): LicenceStatus.SUPERSEDED,
}


def signed(**overrides) -> bytes:
    values = dict(
        issuer="yiwang-licence",
        issued_at=ISSUED,
        next_update=ISSUED + timedelta(hours=24),
        entries=ENTRIES,
        signer=SIGNER,
    )
    values.update(overrides)
    return build_status_list(**values)


def test_round_trip_and_lookups():
    status_list = verify_status_list(signed(), KEYS, now=ISSUED + timedelta(hours=1))
    assert status_list.status_of(ident("2025000001")) is LicenceStatus.REVOKED
    assert status_list.status_of(ident("2025000002")) is LicenceStatus.SUSPENDED
    assert status_list.status_of(ident("2025000003", 1)) is LicenceStatus.SUPERSEDED
    assert status_list.status_of(ident("2025000003", 2)) is None
    assert status_list.status_of(ident("2025000123")) is None
    assert status_list.issued_at == ISSUED
    assert status_list.kid == "yw25"


def test_stale_lists_are_refused_unless_allowed():
    data = signed()
    late = ISSUED + timedelta(hours=24, seconds=1)
    with pytest.raises(StaleStatusList):
        verify_status_list(data, KEYS, now=late)
    assert verify_status_list(data, KEYS, now=late, allow_stale=True).status_of(ident("2025000001"))


def test_any_flipped_byte_is_refused():
    raw = zlib.decompress(signed())
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x01
        with pytest.raises((BadEncoding, BadSignature, UnknownKey, LicenceRuleError)):
            verify_status_list(zlib.compress(bytes(altered)), KEYS, now=ISSUED)


def test_foreign_key_is_refused():
    other = Ed25519Signer.generate(kid="yw25")
    with pytest.raises(BadSignature):
        verify_status_list(signed(signer=other), KEYS, now=ISSUED)
    with pytest.raises(UnknownKey):
        verify_status_list(signed(signer=Ed25519Signer.generate(kid="x")), KEYS, now=ISSUED)


def test_hostile_bytes():
    for data in [b"", b"not deflate", zlib.compress(b"\x00" * 10), zlib.compress(b"x") + b"trailing"]:
        with pytest.raises(BadEncoding):
            verify_status_list(data, KEYS, now=ISSUED)


def test_build_refuses_bad_input():
    with pytest.raises(LicenceRuleError):
        signed(next_update=ISSUED)
    with pytest.raises(LicenceRuleError):
        signed(entries={"1.2.156.3005.2.bad": LicenceStatus.REVOKED})
    with pytest.raises(LicenceRuleError):
        signed(issued_at=datetime(2026, 12, 1), next_update=datetime(2026, 12, 2))


def test_ten_thousand_revocations_stay_small():
    entries = {ident(f"{n:010d}"): LicenceStatus.REVOKED for n in range(10_000)}
    data = signed(entries=entries)
    assert len(data) < 200_000
    assert len(verify_status_list(data, KEYS, now=ISSUED).entries) == 10_000
