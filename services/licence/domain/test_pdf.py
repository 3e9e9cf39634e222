"""The printable licence: rendered with its QR code, sealed (PAdES) with a certificate made here,
and checked by pyHanko's validator -- intact when untouched, not intact after one changed byte."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.licence.domain.credential import default_claims, encode
from services.licence.domain.identifier import build_identifier
from services.licence.domain.pdf import SealCredentials, render_licence_pdf, sign_pdf, validate_signed_pdf
from services.licence.domain.signing import Ed25519Signer


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(_name("yiwang test root CA"), _name("yiwang test root CA"), ca_key.public_key(), ca_key, ca=True)
    seal_key = ec.generate_private_key(ec.SECP256R1())
    seal_cert = _certificate(
        _name("济南市历下区行政审批服务局 电子印章"), ca.subject, seal_key.public_key(), ca_key, ca=False
    )
    return ca, SealCredentials(private_key=seal_key, certificate=seal_cert, chain=(ca,))


@pytest.fixture(scope="module")
def licence_pdf() -> bytes:
    claims = default_claims(
        identifier=build_identifier(
            type_code="11100000000013338W001", issuer_code="11370102MB28559184", serial="2025000123", version=1
        ),
        licence_number="91370102MA3C8KXX1Q",
        holder_name="济南市历下区泉城示例科技有限公司",
        holder_code="91370102MA3C8KXX1Q",
        holder_is_person=False,
        issued_on=date(2025, 3, 1),
        valid_until=None,
        type_name="营业执照",
        issuer_name="济南市历下区行政审批服务局",
    )
    return render_licence_pdf(claims=claims, qr_text=encode(claims, Ed25519Signer.generate(kid="yw25")))


def test_render_uses_the_builtin_chinese_font(licence_pdf):
    assert licence_pdf.startswith(b"%PDF-")
    assert b"STSong-Light" in licence_pdf
    assert b"/FontFile" not in licence_pdf  # nothing embedded: the CID font comes from the viewer


def test_signed_licence_validates(pki, licence_pdf):
    ca, seal = pki
    signed = sign_pdf(licence_pdf, seal=seal)
    check = validate_signed_pdf(signed, trust_roots=[ca])
    assert check.intact and check.valid and check.trusted and check.covers_whole_file
    assert check.ok
    assert "电子印章" in check.signer


def test_untrusted_root_is_not_trusted(pki, licence_pdf):
    _ca, seal = pki
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _certificate(_name("other root"), _name("other root"), other_key.public_key(), other_key, ca=True)
    check = validate_signed_pdf(sign_pdf(licence_pdf, seal=seal), trust_roots=[other])
    assert check.intact and check.valid
    assert not check.trusted and not check.ok


def test_one_changed_byte_in_the_signed_range_is_not_intact(pki, licence_pdf):
    ca, seal = pki
    signed = sign_pdf(licence_pdf, seal=seal)
    byte_range = [int(n) for n in re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", signed).groups()]
    first_range_end = byte_range[0] + byte_range[1]
    index = signed.index(b"ReportLab")
    assert index < first_range_end  # the Producer string is inside the signed bytes
    tampered = signed[:index] + b"X" + signed[index + 1 :]
    check = validate_signed_pdf(tampered, trust_roots=[ca])
    assert not check.intact
    assert not check.ok


def test_unsigned_pdf_has_no_signature(pki, licence_pdf):
    ca, _seal = pki
    assert not validate_signed_pdf(licence_pdf, trust_roots=[ca]).ok
