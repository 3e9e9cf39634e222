"""The offline verifier end to end: a QR rendered by segno to PNG, read back by zxing-cpp through
the command line (a real subprocess), against a key set and status list on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import base45
import pytest
import segno

from services.licence.domain.credential import PREFIX, default_claims, encode
from services.licence.domain.identifier import build_identifier
from services.licence.domain.signing import Ed25519Signer, key_set_document
from services.licence.domain.status_list import LicenceStatus, build_status_list

ROOT = Path(__file__).resolve().parents[3]
SIGNER = Ed25519Signer.generate(kid="yw25")
IDENTIFIER = build_identifier(
    type_code="11100000000013338W001", issuer_code="11370102MB28559184", serial="2025000123", version=1
)


def qr_text(valid_until: date | None = None) -> str:
    claims = default_claims(
        identifier=IDENTIFIER,
        licence_number="91370102MA3C8KXX1Q",
        holder_name="济南市历下区泉城示例科技有限公司",
        holder_code="91370102MA3C8KXX1Q",
        holder_is_person=False,
        issued_on=date(2025, 3, 1),
        valid_until=valid_until,
        type_name=None,
        issuer_name=None,
    )
    return encode(claims, SIGNER)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.licence.verify", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    retired = Ed25519Signer.generate(kid="yw24")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(key_set_document(SIGNER, retired=[retired.public_jwk()])))
    return path


def png(tmp_path: Path, text: str, name: str = "qr.png") -> Path:
    path = tmp_path / name
    segno.make(text, error="m", boost_error=False).save(path, scale=4, border=4)
    return path


def test_image_read_back_and_verified(tmp_path, keys):
    result = run("--image", str(png(tmp_path, qr_text())), "--keys", str(keys), "--date", "2026-12-01")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["result"] == "valid"
    assert output["kid"] == "yw25"
    assert output["claims"]["identifier"] == str(IDENTIFIER)
    assert output["claims"]["holder_name"] == "济南市历下区泉城示例科技有限公司"


def test_one_flipped_payload_byte_fails(tmp_path, keys):
    data = bytearray(base45.b45decode(qr_text()[len(PREFIX) :]))
    data[len(data) // 2] ^= 0x01
    altered = PREFIX + base45.b45encode(bytes(data)).decode()
    result = run("--image", str(png(tmp_path, altered)), "--keys", str(keys), "--date", "2026-12-01")
    assert result.returncode == 1
    assert json.loads(result.stderr)["result"] == "invalid"


def test_unknown_key_set_fails(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps(key_set_document(Ed25519Signer.generate(kid="elsewhere"))))
    result = run("--image", str(png(tmp_path, qr_text())), "--keys", str(other), "--date", "2026-12-01")
    assert result.returncode == 1
    assert json.loads(result.stderr)["rule"] == "unknown_key"


def test_expired(tmp_path, keys):
    result = run("--text", qr_text(valid_until=date(2026, 6, 30)), "--keys", str(keys), "--date", "2026-12-01")
    assert result.returncode == 1
    assert json.loads(result.stderr)["rule"] == "expired"


def test_revoked_by_the_status_list(tmp_path, keys):
    issued = datetime(2026, 11, 30, 12, tzinfo=UTC)
    status = tmp_path / "status.cose"
    status.write_bytes(
        build_status_list(
            issuer="yiwang-licence",
            issued_at=issued,
            next_update=issued + timedelta(days=2),
            entries={str(IDENTIFIER): LicenceStatus.REVOKED},
            signer=SIGNER,
        )
    )
    args = ["--text", qr_text(), "--keys", str(keys), "--date", "2026-12-01", "--status-list", str(status)]
    result = run(*args)
    assert result.returncode == 1
    assert json.loads(result.stderr)["rule"] == "revoked"
    stale = run(*args[:-3], "2026-12-05", "--status-list", str(status))
    assert stale.returncode == 2
    assert json.loads(stale.stderr)["rule"] == "stale"


def test_no_qr_in_the_image_and_bad_arguments(tmp_path, keys):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    assert run("--image", str(blank), "--keys", str(keys)).returncode == 2
    assert run("--keys", str(keys)).returncode == 2
    assert run("--text", "x", "--keys", str(tmp_path / "missing.json")).returncode == 2
