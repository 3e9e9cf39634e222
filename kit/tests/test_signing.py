"""kit.signing against published digests (FIPS 180-2 SHA-256 of "abc" and of nothing, RFC 4231's
HMAC-SHA256 test case 2) and against OpenSSL's HMAC, computed outside Python."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess

import pytest

from kit.signing import (
    SignatureRejected,
    canonical_string,
    new_nonce,
    sign,
    signed_headers,
    verify,
    verify_request,
)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # FIPS 180-2
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2, "abc"


def test_the_canonical_string_is_five_lines_with_the_body_digest():
    assert canonical_string("post", "/checks", "1700000000", "n" * 16, b"") == (
        b"POST\n/checks\n1700000000\nnnnnnnnnnnnnnnnn\n" + EMPTY_SHA256.encode()
    )
    assert canonical_string("GET", "/a?b=1", "1", "x" * 16, b"abc").endswith(ABC_SHA256.encode())


def test_the_hmac_is_rfc_4231_hmac_sha256():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest() == expected
    message = canonical_string("POST", "/checks", "1700000000", "abcdefghijklmnop", b"{}")
    assert (
        sign("Jefe", "POST", "/checks", "1700000000", "abcdefghijklmnop", b"{}")
        == hmac.new(b"Jefe", message, hashlib.sha256).hexdigest()
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary on this machine")
def test_a_signature_agrees_with_openssl():
    body = b'{"identifier":"1.2.156.3005.2.x","holder":"11010519491231002X"}'
    message = canonical_string("POST", "/checks", "1767225600", "Nonce_0123456789-abc", body)
    openssl = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", "s3cret-key"], input=message, capture_output=True, check=True
    )
    theirs = openssl.stdout.decode().strip().rsplit(" ", 1)[-1]
    assert sign("s3cret-key", "POST", "/checks", "1767225600", "Nonce_0123456789-abc", body) == theirs


def test_verify_accepts_any_current_secret_and_nothing_else():
    headers = signed_headers("caseflow", "new", "POST", "/checks", b"{}", nonce=new_nonce(), timestamp=100)
    args = ("POST", "/checks", headers["X-Timestamp"], headers["X-Nonce"], b"{}", headers["X-Signature"])
    assert verify(["old", "new"], *args)
    assert not verify(["old"], *args)
    assert not verify(["new"], "POST", "/checks", headers["X-Timestamp"], headers["X-Nonce"], b"{ }",
                      headers["X-Signature"])  # fmt: skip


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_verify_request_names_each_refusal():
    nonce = new_nonce()
    good = _lower(signed_headers("caseflow", "k", "POST", "/checks", b"{}", nonce=nonce, timestamp=1000))
    keys = {"caseflow": ["k"]}
    common = dict(method="POST", path="/checks", query="", body=b"{}", max_age=300)
    assert verify_request(keys, headers=good, now=1000, **common) == ("caseflow", nonce)
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "x-nonce"}, 1000),
        "unknown-partner": ({**good, "x-partner-id": "someone"}, 1000),
        "stale": (good, 1301),
        "bad-timestamp": ({**good, "x-timestamp": "-5"}, 1000),
        "bad-nonce": ({**good, "x-nonce": "short"}, 1000),
        "bad-signature": ({**good, "x-signature": "0" * 64}, 1000),
    }
    for reason, (headers, now) in cases.items():
        with pytest.raises(SignatureRejected) as refused:
            verify_request(keys, headers=headers, now=now, **common)
        assert refused.value.reason == reason
    with pytest.raises(SignatureRejected) as refused:
        verify_request(keys, headers=good, now=1000, path_allowed=lambda partner, path: False, **common)
    assert refused.value.reason == "path-not-allowed"
