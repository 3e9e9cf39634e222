"""Offline check of a licence QR code, as a bank clerk's desk tool would do it (journey J7).

    python -m services.licence.verify (--image PATH | --text TEXT) --keys KEYSET.json
                                      [--status-list FILE] [--date YYYY-MM-DD]

Prints the verified claims as JSON on stdout, or the failure on stderr. Exit codes:
0 valid (and not listed in the status list, when one is given); 1 not valid (bad signature,
unknown key, expired, revoked/suspended/superseded, malformed code); 2 cannot check (no QR code
in the image, unreadable key set or status list, stale status list, bad arguments).
No network: the key set and the status list are files the verifier cached earlier.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from services.licence.domain.credential import CHINA, decode_and_verify
from services.licence.domain.errors import CredentialError, LicenceRuleError, StaleStatusList
from services.licence.domain.signing import KeySet
from services.licence.domain.status_list import verify_status_list

VALID, INVALID, CANNOT_CHECK = 0, 1, 2


def read_qr_text(path: Path) -> str | None:
    """The text of the first QR code zxing-cpp finds in the image, or None."""
    import zxingcpp
    from PIL import Image

    with Image.open(path) as image:
        results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return results[0].text if results else None


def _fail(kind: str, message: str, code: int, **extra: object) -> int:
    print(json.dumps({"result": kind, "error": message, **extra}, ensure_ascii=False), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.licence.verify", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="a photo or scan holding the licence's QR code")
    source.add_argument("--text", help="the QR code's text (YWL1:...)")
    parser.add_argument("--keys", type=Path, required=True, help="the published key set (JWKS JSON)")
    parser.add_argument("--status-list", type=Path, help="a cached signed status list")
    parser.add_argument("--date", type=date.fromisoformat, help="check as of this date (default: today in China)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return CANNOT_CHECK if exc.code else VALID

    now = (
        datetime.combine(args.date, datetime.min.time(), tzinfo=CHINA).astimezone(UTC)
        if args.date
        else datetime.now(UTC)
    )
    try:
        key_set = KeySet.from_jwks(json.loads(args.keys.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return _fail("cannot_check", f"key set: {exc}", CANNOT_CHECK)

    if args.image is not None:
        try:
            text = read_qr_text(args.image)
        except OSError as exc:
            return _fail("cannot_check", f"image: {exc}", CANNOT_CHECK)
        if text is None:
            return _fail("cannot_check", "no QR code found in the image", CANNOT_CHECK)
    else:
        text = args.text

    try:
        verified = decode_and_verify(text, key_set, now=now)
    except CredentialError as exc:
        return _fail("invalid", exc.message, INVALID, field=exc.field, rule=exc.rule)

    output: dict[str, object] = {"result": "valid", "kid": verified.kid, "claims": verified.claims.as_dict()}
    if args.status_list is not None:
        try:
            status_list = verify_status_list(args.status_list.read_bytes(), key_set, now=now)
        except StaleStatusList as exc:
            return _fail("cannot_check", exc.message, CANNOT_CHECK, field=exc.field, rule=exc.rule)
        except (OSError, LicenceRuleError) as exc:
            return _fail("cannot_check", f"status list: {exc}", CANNOT_CHECK)
        status = status_list.status_of(str(verified.claims.identifier))
        output["status_checked_as_of"] = status_list.issued_at.isoformat()
        if status is not None:
            return _fail(
                "invalid",
                f"the licence is listed as {status.name.lower()}",
                INVALID,
                rule=status.name.lower(),
                claims=verified.claims.as_dict(),
            )
    print(json.dumps(output, ensure_ascii=False, indent=2))
    return VALID


if __name__ == "__main__":
    sys.exit(main())
