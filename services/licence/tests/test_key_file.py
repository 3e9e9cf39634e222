"""The development signing key made once when replicas start together on one empty volume."""

from __future__ import annotations

import json
import subprocess
import sys

from services.licence.credentials import create_once, load_signer
from services.licence.settings import Settings

MAKE_AND_PRINT = """
import json, sys
from services.licence.credentials import load_signer
from services.licence.settings import Settings
signer = load_signer(Settings(signing_key_file=sys.argv[1]))
print(signer.private_jwk()["x"])  # the public key: kids made in one second are alike
"""


def test_replicas_starting_at_once_sign_with_one_key(tmp_path):
    path = tmp_path / "volume" / "licence-signing-key.json"
    starts = [
        subprocess.Popen([sys.executable, "-c", MAKE_AND_PRINT, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert all(process.returncode == 0 for process in starts)
    assert keys == {json.loads(path.read_text())["x"]}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no drafts left behind
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_existing_file_is_kept(tmp_path):
    path = tmp_path / "key.json"
    first = load_signer(Settings(signing_key_file=str(path)))
    create_once(path, "something else")
    assert load_signer(Settings(signing_key_file=str(path))).private_jwk() == first.private_jwk()
