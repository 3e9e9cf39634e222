"""A trivial backend for the gateway bench: GET /me verifies the bearer token with kit.auth.

It serves its own JWKS and hands out a token at POST /token, so the gateway's overhead can be
measured without identity's database work in the way (``--backend trivial``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from fastapi import Depends, FastAPI
from jwt.algorithms import OKPAlgorithm

from kit.auth import Principal, TokenVerifier, current_principal, public_keys_from_jwks
from kit.errors import install_problem_handlers

KID = "bench-1"


def _key() -> Ed25519PrivateKey:
    path = Path(os.environ.get("BENCH_KEY_FILE", ".data/bench-key.pem"))
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def create_app() -> FastAPI:
    key = _key()
    jwk = {**json.loads(OKPAlgorithm.to_jwk(key.public_key())), "kid": KID, "alg": "EdDSA"}
    jwks = {"keys": [jwk]}
    app = FastAPI()
    install_problem_handlers(app)

    async def fetch():
        return public_keys_from_jwks(jwks)

    app.state.token_verifier = TokenVerifier(fetch, issuer="yiwang-identity", audience="yiwang")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/.well-known/jwks.json")
    async def keys():
        return jwks

    @app.post("/token")
    async def token():
        now = int(time.time())
        claims = {
            "iss": "yiwang-identity", "aud": "yiwang", "sub": "11010519491231002X", "kind": "person", "lvl": 2,
            "jti": uuid.uuid4().hex, "iat": now, "exp": now + 7200,
        }  # fmt: skip
        return {"access_token": jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": KID})}

    @app.get("/me")
    async def me(principal: Principal = Depends(current_principal)):
        return {"subject": principal.subject, "kind": principal.kind, "level": principal.level}

    return app
