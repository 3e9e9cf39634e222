"""The printable licence: a one-page PDF (reportlab) carrying the QR credential, sealed with a PAdES
baseline signature (pyHanko), and the check a relying party runs on it. All in memory, no I/O.

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1): the viewer supplies the
glyphs, so no font file ships with the service. The QR code is drawn as vector squares from
segno's matrix, so it prints sharp at any size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import segno
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from services.licence.domain.credential import LicenceClaims

FONT = "STSong-Light"
SIGNATURE_FIELD = "LicenceSeal"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


@dataclass(frozen=True, slots=True)
class SealCredentials:
    """The issuer's signing key and certificate chain (leaf first)."""

    private_key: CertificateIssuerPrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True, slots=True)
class PdfSignatureCheck:
    """What a validator found: ``intact`` (the signed bytes are unchanged), ``valid`` (the
    cryptographic signature checks), ``trusted`` (the certificate chains to a trusted root),
    ``covers_whole_file`` (nothing was appended after signing), and the signer's subject."""

    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and self.covers_whole_file


def development_seal(common_name: str, *, days: int = 3650) -> tuple[SealCredentials, x509.Certificate]:
    """A seal for a development platform (``make run``): a throwaway root and a seal certificate
    under it, both named as development-only. Any validator reports it untrusted — which is the
    point: a real deployment configures its issuer's seal and chain."""

    def name(text: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, text)]
        )

    def certificate(subject: x509.Name, issuer: x509.Name, public_key, signing_key, *, ca: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        usage = dict.fromkeys(("key_encipherment", "data_encipherment", "key_agreement", "encipher_only",
                               "decipher_only"), False)  # fmt: skip
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca, content_commitment=not ca, key_cert_sign=ca, crl_sign=ca, **usage
                ),
                critical=True,
            )  # fmt: skip
            .sign(signing_key, hashes.SHA256())
        )

    root_key, seal_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = name(f"{common_name} 开发用根证书（不可信）")
    root = certificate(root_name, root_name, root_key.public_key(), root_key, ca=True)
    leaf = certificate(
        name(f"{common_name} 开发用电子印章（不可信）"), root_name, seal_key.public_key(), root_key, ca=False
    )
    return SealCredentials(private_key=seal_key, certificate=leaf, chain=(root,)), root


def _draw_qr(pdf: canvas.Canvas, text: str, *, x: float, y: float, size: float) -> int:
    qr = segno.make(text, error="m", boost_error=False)
    matrix = qr.matrix
    module = size / len(matrix)
    pdf.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix):
        for col_index, dark in enumerate(row):
            if dark:
                pdf.rect(x + col_index * module, y + size - (row_index + 1) * module, module, module, stroke=0, fill=1)
    return int(qr.version)  # segno's version is an int for full-size QR codes


def render_licence_pdf(*, claims: LicenceClaims, qr_text: str, title: str | None = None) -> bytes:
    """A one-page landscape A4 licence with its fields, identifier and QR credential."""
    buffer = io.BytesIO()
    width, height = landscape(A4)
    pdf = canvas.Canvas(buffer, pagesize=(width, height), pageCompression=1)
    heading = title or claims.type_name or "电子证照"
    pdf.setTitle(heading)
    pdf.setAuthor(claims.issuer_name or claims.identifier.issuer_code)
    pdf.setFont(FONT, 30)
    pdf.drawCentredString(width / 2, height - 80, heading)

    def fmt(value: date | None) -> str:
        return value.strftime("%Y年%m月%d日") if value else "长期"

    rows = [
        ("证照编号", claims.licence_number),
        ("名　　称", claims.holder_name),
        ("持证主体代码", claims.holder_code or claims.licence_number),
        ("发证机关", claims.issuer_name or claims.identifier.issuer_code),
        ("发证日期", fmt(claims.issued_on)),
        ("有效期至", fmt(claims.valid_until)),
    ]
    pdf.setFont(FONT, 14)
    y = height - 150
    for label, value in rows:
        pdf.drawString(70, y, label)
        pdf.drawString(190, y, value)
        y -= 32
    pdf.setFont(FONT, 9)
    pdf.drawString(70, 60, f"电子证照标识：{claims.identifier}")
    _draw_qr(pdf, qr_text, x=width - 250, y=height - 360, size=190)
    pdf.drawCentredString(width - 155, height - 378, "扫码离线核验")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def sign_pdf(pdf: bytes, *, seal: SealCredentials, reason: str = "电子证照签章", location: str | None = None) -> bytes:
    """The PDF with a PAdES baseline (B-B) signature in field ``LicenceSeal``."""
    key_der = seal.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1_certificate(seal.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_certificate(c) for c in seal.chain]),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    output = signers.sign_pdf(writer, metadata, signer=signer)
    return output.getvalue()


def validate_signed_pdf(pdf: bytes, *, trust_roots: list[x509.Certificate]) -> PdfSignatureCheck:
    """Validate the licence's signature offline (no fetching of CRLs/OCSP) against ``trust_roots``."""
    reader = PdfFileReader(io.BytesIO(pdf))
    signatures = reader.embedded_signatures
    if not signatures:
        return PdfSignatureCheck(False, False, False, False, "")
    context = ValidationContext(
        trust_roots=[_asn1_certificate(root) for root in trust_roots], allow_fetching=False, revocation_mode="soft-fail"
    )
    status = validate_pdf_signature(signatures[0], signer_validation_context=context)
    return PdfSignatureCheck(
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer=status.signing_cert.subject.human_friendly,
    )
