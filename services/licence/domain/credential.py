"""The compact signed payload printed as a licence's QR code, checked offline by anyone holding the
published key set (docs/adr/0013-licence-credentials.md).

    text = "YWL1:" + Base45( deflate?( COSE_Sign1( CBOR(claims) ) ) )

- Claims are a CBOR map with small integer keys (below). The identifier travels as its parts
  (type code, issuer code, serial, version); the fixed prefix and the check character are
  rebuilt on decoding, so a verifier gets the dotted GB/T 36904 identifier back.
- Names are GB 18030 byte strings: the national encoding covers all of Unicode losslessly and
  takes 2 bytes per common Hanzi where UTF-8 takes 3, which is what keeps a business licence
  with a 16-character company name inside QR version 10 at error correction M.
- zlib deflate is applied only when it makes the COSE bytes shorter (an Ed25519 signature does
  not compress); a decoder tells the two apart by the first byte (0x78 zlib, 0xD2 COSE tag 18).
- Base45 (RFC 9285) keeps the text inside the QR alphanumeric set, which packs 5.5 bits a character.
- What is disclosed is the holder's choice; the default (``default_claims``) shows type, number,
  holder name, masked personal holder code, issuer, issue date and validity. A full resident
  identity number is refused: a QR code is read by anyone who sees the paper.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import base45
import cbor2
from stdnum.iso7064 import mod_11_2

from services.licence.domain.cose import DECODE_ERRORS, sign1, verify1
from services.licence.domain.errors import (
    BadEncoding,
    Expired,
    InvalidIdentifier,
    LicenceRuleError,
    NotYetValid,
)
from services.licence.domain.identifier import LicenceIdentifier, build_identifier, mask_holder_code
from services.licence.domain.signing import KeySet, Signer

PREFIX = "YWL1:"
# QR version 40 holds at most 4,296 alphanumeric characters; anything longer is not from a QR code.
MAX_TEXT = 4296
MAX_INFLATED = 8192
CHINA = timezone(timedelta(hours=8))  # one time zone, no daylight saving
_EPOCH = date(1970, 1, 1)

# Claim keys (CBOR map). Stable: a printed licence lives for years; add keys, never renumber.
K_IDENTIFIER = 1  # [type code, issuer code, serial, version]
K_NUMBER = 2  # 证照编号, the licence number printed on it
K_HOLDER_NAME = 3  # 持证主体名称, GB 18030 bytes
K_HOLDER_CODE = 4  # 持证主体代码 as disclosed (masked for persons)
K_ISSUED = 5  # 发证日期, days since 1970-01-01
K_VALID_UNTIL = 6  # 有效期至, days since 1970-01-01; absent = 长期 (no end)
K_TYPE_NAME = 7  # 证照类型名称, GB 18030 bytes
K_ISSUER_NAME = 8  # 发证机关, GB 18030 bytes

_RESIDENT_ID = re.compile(r"[1-9]\d{5}(\d{8})\d{3}[\dX]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CODE = re.compile(r"[0-9A-Za-z*\-()（）]{1,64}")


@dataclass(frozen=True, slots=True)
class LicenceClaims:
    """What a QR code states about one licence."""

    identifier: LicenceIdentifier
    licence_number: str
    holder_name: str
    issued_on: date
    valid_until: date | None = None  # None: 长期 (valid without end)
    holder_code: str | None = None  # as disclosed; masked for a person
    type_name: str | None = None
    issuer_name: str | None = None

    @property
    def type_code(self) -> str:
        return self.identifier.type_code

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, for the verifier's output and the API."""
        return {
            "identifier": str(self.identifier),
            "type_code": self.type_code,
            "type_name": self.type_name,
            "licence_number": self.licence_number,
            "holder_name": self.holder_name,
            "holder_code": self.holder_code,
            "issuer_code": self.identifier.issuer_code,
            "issuer_name": self.issuer_name,
            "issued_on": self.issued_on.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """Claims whose signature checked out under ``kid`` and that are valid on the checked date."""

    claims: LicenceClaims
    kid: str
    alg: str
    payload_size: int = field(default=0)


def default_claims(
    *,
    identifier: LicenceIdentifier,
    licence_number: str,
    holder_name: str,
    holder_code: str,
    holder_is_person: bool,
    issued_on: date,
    valid_until: date | None,
    type_name: str | None,
    issuer_name: str | None,
) -> LicenceClaims:
    """The default disclosure: a person's code masked (``3714**********0012``), an enterprise's
    credit code shown (it is public and printed on the licence itself) but left out when it is
    the licence number already, as on a business licence."""
    if holder_is_person:
        disclosed: str | None = mask_holder_code(holder_code)
        if looks_like_resident_id(licence_number):
            licence_number = mask_holder_code(licence_number)
    else:
        disclosed = None if holder_code == licence_number else holder_code
    return LicenceClaims(
        identifier=identifier,
        licence_number=licence_number,
        holder_name=holder_name,
        issued_on=issued_on,
        valid_until=valid_until,
        holder_code=disclosed,
        type_name=type_name,
        issuer_name=issuer_name,
    )


def looks_like_resident_id(value: str) -> bool:
    """True for an 18-character GB 11643 number: shape, a real birth date and the MOD 11-2 check.
    The region is not looked up (python-stdnum's table misses re-coded counties), so the guard errs
    towards refusing."""
    match = _RESIDENT_ID.fullmatch(value)
    if not match or not mod_11_2.is_valid(value):
        return False
    try:
        born = datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return False
    return born.year >= 1900


def _text_bytes(value: str, name: str) -> bytes:
    if not value or len(value) > 100 or _CONTROL.search(value):
        raise LicenceRuleError(name, "text", "1-100 printable characters")
    try:
        return value.encode("gb18030")
    except UnicodeEncodeError:
        raise LicenceRuleError(name, "text", "not encodable text (lone surrogate?)") from None


def check_licence_number(value: str) -> str:
    """The number a QR credential can carry (LicenceRuleError otherwise): a number stored from
    outside (a department's pushed certificate) is checked before it is stored, so its QR works."""
    return _code(value, "licence_number")


def _code(value: str, name: str) -> str:
    if not _CODE.fullmatch(value):
        raise LicenceRuleError(name, "code", "1-64 characters 0-9, A-Z, *, - or brackets")
    if looks_like_resident_id(value):
        raise LicenceRuleError(name, "unmasked_id_number", "a full resident identity number is never put in a QR code")
    return value


def _days(value: date) -> int:
    return (value - _EPOCH).days


def claims_to_cbor(claims: LicenceClaims) -> bytes:
    """The claims map, validated; raises LicenceRuleError naming the field."""
    ident = claims.identifier
    body: dict[int, Any] = {
        K_IDENTIFIER: [ident.type_code, ident.issuer_code, ident.serial, ident.version],
        K_NUMBER: _code(claims.licence_number, "licence_number"),
        K_HOLDER_NAME: _text_bytes(claims.holder_name, "holder_name"),
        K_ISSUED: _days(claims.issued_on),
    }
    if claims.holder_code is not None:
        body[K_HOLDER_CODE] = _code(claims.holder_code, "holder_code")
    if claims.valid_until is not None:
        if claims.valid_until < claims.issued_on:
            raise LicenceRuleError("valid_until", "order", "a licence cannot end before it is issued")
        body[K_VALID_UNTIL] = _days(claims.valid_until)
    if claims.type_name is not None:
        body[K_TYPE_NAME] = _text_bytes(claims.type_name, "type_name")
    if claims.issuer_name is not None:
        body[K_ISSUER_NAME] = _text_bytes(claims.issuer_name, "issuer_name")
    return cbor2.dumps(body)


def encode(claims: LicenceClaims, signer: Signer) -> str:
    """The QR text for ``claims`` signed by ``signer``."""
    signed = sign1(claims_to_cbor(claims), signer)
    packed = zlib.compress(signed, 9)
    return PREFIX + base45.b45encode(packed if len(packed) < len(signed) else signed).decode("ascii")


def _unpack(text: str) -> bytes:
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise BadEncoding("credential", "prefix", f"a licence QR code starts with {PREFIX}")
    if len(text) > MAX_TEXT:
        raise BadEncoding("credential", "length", "longer than any QR code holds")
    try:
        data = base45.b45decode(text[len(PREFIX) :])
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise BadEncoding("credential", "base45", "the text after the prefix is not Base45") from None
    if data[:1] == b"\x78":
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(data, MAX_INFLATED)
        except zlib.error:
            raise BadEncoding("credential", "deflate", "the compressed content is damaged") from None
        # A decompression bomb or trailing garbage is refused, not half-read.
        if inflater.unconsumed_tail or not inflater.eof:
            raise BadEncoding("credential", "deflate", "the compressed content is damaged or too large")
        data = inflated
    return data


def _text(body: dict[Any, Any], key: int, name: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, bytes):
        raise BadEncoding("credential", "claims", f"{name} is missing or not a byte string")
    try:
        return value.decode("gb18030")
    except UnicodeDecodeError:
        raise BadEncoding("credential", "claims", f"{name} is not GB 18030 text") from None


def _string(body: dict[Any, Any], key: int, name: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadEncoding("credential", "claims", f"{name} is missing or not text")
    return value


def _date(body: dict[Any, Any], key: int, name: str, *, required: bool) -> date | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
        raise BadEncoding("credential", "claims", f"{name} is not a day number")
    return _EPOCH + timedelta(days=value)


def claims_from_cbor(payload: bytes) -> LicenceClaims:
    """Claims from a (verified) payload; raises BadEncoding when they are malformed."""
    try:
        body = cbor2.loads(payload)
    except DECODE_ERRORS:
        raise BadEncoding("credential", "claims", "the claims are not CBOR") from None
    if not isinstance(body, dict):
        raise BadEncoding("credential", "claims", "the claims are not a map")
    parts = body.get(K_IDENTIFIER)
    if not (isinstance(parts, list) and len(parts) == 4):
        raise BadEncoding("credential", "claims", "the identifier is missing")
    type_code, issuer_code, serial, version = parts
    if not (all(isinstance(p, str) for p in (type_code, issuer_code, serial)) and type(version) is int):
        raise BadEncoding("credential", "claims", "the identifier parts are malformed")
    try:
        identifier = build_identifier(type_code=type_code, issuer_code=issuer_code, serial=serial, version=version)
    except InvalidIdentifier as exc:
        raise BadEncoding("credential", "claims", f"the identifier is malformed ({exc.rule})") from None
    issued_on = _date(body, K_ISSUED, "issued_on", required=True)
    assert issued_on is not None
    return LicenceClaims(
        identifier=identifier,
        licence_number=_string(body, K_NUMBER, "licence_number", required=True) or "",
        holder_name=_text(body, K_HOLDER_NAME, "holder_name", required=True) or "",
        issued_on=issued_on,
        valid_until=_date(body, K_VALID_UNTIL, "valid_until", required=False),
        holder_code=_string(body, K_HOLDER_CODE, "holder_code", required=False),
        type_name=_text(body, K_TYPE_NAME, "type_name", required=False),
        issuer_name=_text(body, K_ISSUER_NAME, "issuer_name", required=False),
    )


def local_date(now: date | datetime) -> date:
    """The calendar date in China for ``now`` (a naive datetime is taken as China time)."""
    if isinstance(now, datetime):
        return now.astimezone(CHINA).date() if now.tzinfo else now.date()
    return now


def decode_and_verify(text: str, key_set: KeySet, *, now: date | datetime) -> VerifiedCredential:
    """Check a QR text offline. Raises BadEncoding (prefix, Base45, deflate, CBOR, COSE, claims),
    UnknownKey, UnsupportedAlgorithm, BadSignature, Expired or NotYetValid; all are
    CredentialError with ``field`` and ``rule``."""
    data = _unpack(text)
    key, payload = verify1(data, key_set)
    claims = claims_from_cbor(payload)
    today = local_date(now)
    if claims.valid_until is not None and today > claims.valid_until:
        raise Expired("valid_until", "expired", f"the licence was valid until {claims.valid_until.isoformat()}")
    if today < claims.issued_on:
        raise NotYetValid("issued_on", "not_yet_valid", f"the licence is issued on {claims.issued_on.isoformat()}")
    return VerifiedCredential(claims=claims, kid=key.kid, alg=key.alg, payload_size=len(data))
