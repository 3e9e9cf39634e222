"""Signed artefacts of licences: the QR credential, the status list, the published key set, and
the public verification of either a QR text or an identifier with its number.

The signing key is an Ed25519 private JWK in the secret setting ``LICENCE_SIGNING_KEY`` (every
replica signs with the same key); rotated-out public keys stay published (``LICENCE_RETIRED_KEYS``)
so licences printed under them still verify. Without a configured key (development), one is made
once and kept in ``.data/licence-signing-key.json``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.driver import Driver, Query
from services.licence.context import Context
from services.licence.domain import states
from services.licence.domain.credential import decode_and_verify, default_claims, encode
from services.licence.domain.errors import CredentialError, Expired, InvalidIdentifier
from services.licence.domain.identifier import parse_identifier
from services.licence.domain.signing import Ed25519Signer, KeySet, key_set_document
from services.licence.domain.status_list import LicenceStatus, build_status_list
from services.licence.models import Licence
from services.licence.settings import Settings

STATUS_LIST_ISSUER = "yiwang-licence"
_LISTED = {states.REVOKED: LicenceStatus.REVOKED, states.SUSPENDED: LicenceStatus.SUSPENDED}


def load_signer(settings: Settings) -> Ed25519Signer:
    """The configured signing key, or the development key file (made on first use)."""
    secret = settings.signing_key.get_secret_value()
    if secret:
        return Ed25519Signer.from_private_jwk(json.loads(secret))
    path = Path(settings.signing_key_file)
    if not path.exists():
        signer = Ed25519Signer.generate(kid=f"dev-{int(time.time())}")
        create_once(path, json.dumps(signer.private_jwk()))
    return Ed25519Signer.from_private_jwk(json.loads(path.read_text()))


def create_once(path: Path, text: str) -> None:
    """Writes ``path`` unless it exists, whole or not at all: replicas starting together on one
    empty volume each make a key, and the first to link its complete file wins; the others read
    that one (a plain write would let a replica sign with a key another has overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    draft.write_text(text)
    draft.chmod(0o600)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def load_seal(settings: Settings):
    """The PDF seal (key and chain) from the settings, or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from services.licence.domain.pdf import SealCredentials

    key_pem, chain_pem = settings.pdf_seal_key.get_secret_value(), settings.pdf_seal_certificates
    if (not key_pem or not chain_pem) and settings.sandbox:
        key_pem, chain_pem = _development_seal(Path(settings.signing_key_file).with_name("licence-dev-seal.pem"))
    if not key_pem or not chain_pem:
        return None
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
    key = load_pem_private_key(key_pem.encode(), password=None)
    return SealCredentials(private_key=key, certificate=chain[0], chain=tuple(chain[1:]))  # type: ignore[arg-type]


def _development_seal(path: Path) -> tuple[str, str]:
    """A sandbox platform's seal (key PEM, chain PEM), made once and kept beside the signing key, so
    that `make run` hands out sealed PDFs a validator reports as untrusted (never in a deployment)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from services.licence.domain.pdf import development_seal

    if not path.exists():
        seal, _ = development_seal("yiwang 电子证照")
        key = seal.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        chain = "".join(c.public_bytes(Encoding.PEM).decode() for c in (seal.certificate, *seal.chain))
        create_once(path, key + chain)
    text = path.read_text()
    split = text.index("-----BEGIN CERTIFICATE-----")
    return text[:split], text[split:]


class Credentials:
    """The signer, the published key set and a cached status list for one app."""

    def __init__(self, settings: Settings) -> None:
        self.signer = load_signer(settings)
        self.jwks = key_set_document(self.signer, retired=json.loads(settings.retired_keys or "[]"))
        self.key_set = KeySet.from_jwks(self.jwks)
        self.status_list_ttl = settings.status_list_ttl_seconds
        self._status_list: tuple[float, bytes] | None = None
        self.seal = load_seal(settings)

    @staticmethod
    def _claims(licence: Licence):
        return default_claims(
            identifier=parse_identifier(licence.identifier), licence_number=licence.number,
            holder_name=licence.holder_name, holder_code=licence.holder,
            holder_is_person=licence.holder_code_type == "111", issued_on=licence.issued_on,
            valid_until=licence.valid_until, type_name=licence.name, issuer_name=licence.issuer_name,
        )  # fmt: skip

    def qr(self, licence: Licence) -> dict[str, Any]:
        """The holder's signed offline credential (default disclosure) and a PNG of it."""
        text = encode(self._claims(licence), self.signer)
        return {"text": text, "version": licence.version, "png_base64": _png(text)}

    def pdf(self, licence: Licence) -> bytes | None:
        """The printable licence with its QR, sealed; None when no seal is configured."""
        if self.seal is None:
            return None
        from services.licence.domain.pdf import render_licence_pdf, sign_pdf

        qr = encode(self._claims(licence), self.signer)
        document = render_licence_pdf(claims=self._claims(licence), qr_text=qr, title=licence.name)
        return sign_pdf(document, seal=self.seal, location=licence.issuer_name)

    async def status_list(self, session: AsyncSession, ctx: Context) -> bytes:
        """The signed status list of licences not in force (revoked, suspended), rebuilt at most
        once per ``status_list_ttl`` seconds per process."""
        cached = self._status_list
        if cached is not None and time.monotonic() - cached[0] < self.status_list_ttl:
            return cached[1]
        rows = (
            await session.execute(select(Licence.identifier, Licence.status).where(Licence.status.in_(tuple(_LISTED))))
        ).all()
        now = ctx.current_time()
        document = build_status_list(
            issuer=STATUS_LIST_ISSUER, issued_at=now, next_update=now + timedelta(seconds=self.status_list_ttl * 2),
            entries={identifier: _LISTED[status] for identifier, status in rows}, signer=self.signer,
        )  # fmt: skip
        self._status_list = (time.monotonic(), document)
        return document

    async def verify(self, db: Driver, ctx: Context, *, text: str | None,
                     identifier: str | None, number: str | None) -> dict[str, Any]:  # fmt: skip
        """POST /licences/verify: the licence's status now and what it discloses to a verifier, as
        plain JSON data (a hot public read: one statement built once, on the driver)."""
        disclosed: dict[str, Any] = {}
        if text is not None:
            try:
                verified = decode_and_verify(text, self.key_set, now=ctx.current_time())
            except Expired:
                return {"status": states.EXPIRED, "claims": {}, "reason": "the credential's validity has ended"}
            except CredentialError as exc:
                return {"status": "unknown", "claims": {}, "reason": f"{exc.rule}: {exc.message}"}
            disclosed = verified.claims.as_dict()
            identifier = disclosed["identifier"]
            number = None
        try:
            parse_identifier(identifier or "")
        except InvalidIdentifier as exc:
            return {"status": "unknown", "claims": {}, "reason": f"{exc.rule}: {exc.message}"}
        licence = await db.fetchrow(_VERIFIED, {"identifier": identifier})
        # Identifier and number must both match: an identifier alone (printed, guessable) says nothing.
        if licence is None or (number is not None and licence["number"] != number):
            return {"status": "unknown", "claims": {}, "reason": "no licence with this identifier and number"}
        status = licence["status"]
        valid_until = licence["valid_until"]
        if status == states.VALID and valid_until is not None and valid_until < ctx.today():
            status = states.EXPIRED
        if not disclosed:
            disclosed = {
                "identifier": licence["identifier"], "type_name": licence["name"], "licence_number": licence["number"],
                "holder_name": _masked_name(licence["holder_name"], licence["holder_code_type"]),
                "issuer_name": licence["issuer_name"], "issued_on": licence["issued_on"].isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else None,
            }  # fmt: skip
        return {
            "status": status,
            "claims": disclosed,
            "reason": licence["status_reason"] if status != "valid" else None,
        }


# What verification reads and discloses of a licence.
_VERIFIED = Query(select(
    Licence.identifier, Licence.number, Licence.name, Licence.status, Licence.status_reason, Licence.valid_until,
    Licence.holder_name, Licence.holder_code_type, Licence.issuer_name, Licence.issued_on,
).where(Licence.identifier == bindparam("identifier")))  # fmt: skip


def _masked_name(name: str, code_type: str) -> str:
    # A person's name shown to whoever typed an identifier and number: the family name only.
    return name[:1] + "*" * (len(name) - 1) if code_type == "111" and name else name


def _png(text: str) -> str | None:
    try:
        import segno
    except ImportError:  # pragma: no cover - segno is a dependency; the text alone still works
        return None
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=4)
    return base64.b64encode(buffer.getvalue()).decode()
