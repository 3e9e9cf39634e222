"""COSE_Sign1 (RFC 9052 §4.2) built with cbor2, for the QR credential and the status list.

    COSE_Sign1 = #6.18([protected: bstr .cbor {1: alg, 4: kid}, unprotected: {}, payload: bstr,
                        signature: bstr])
    signed bytes = CBOR(["Signature1", protected, external_aad = h'', payload])   (Sig_structure)

Written here rather than taken from pycose: it is forty lines over cbor2, pycose would add its own
key classes and dependencies for the one structure we use, and the Sig_structure is what a
reviewer has to check either way. The kid travels in the protected header so it is signed too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from services.licence.domain.errors import BadEncoding, UnsupportedAlgorithm
from services.licence.domain.signing import ALG_EDDSA, KeySet, PublicKey, Signer

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
# IANA COSE algorithm ids; SM2 has none registered, so it cannot travel in COSE until it does.
COSE_ALGORITHMS = {ALG_EDDSA: -8}
_ALGORITHM_NAMES = {value: name for name, value in COSE_ALGORITHMS.items()}
# Decoding errors cbor2 raises on hostile input (truncated, wrong types, absurd lengths, deep nesting).
DECODE_ERRORS = (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, MemoryError, KeyError)


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign1(payload: bytes, signer: Signer) -> bytes:
    """The tagged COSE_Sign1 of ``payload`` under ``signer``'s key."""
    if signer.alg not in COSE_ALGORITHMS:
        raise UnsupportedAlgorithm("alg", "unsupported", f"{signer.alg} has no COSE algorithm id")
    protected = cbor2.dumps({HEADER_ALG: COSE_ALGORITHMS[signer.alg], HEADER_KID: signer.kid.encode()})
    signature = signer.sign(_sig_structure(protected, payload))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def _structure(data: bytes, field: str) -> tuple[bytes, Mapping[Any, Any], bytes, bytes]:
    try:
        message = cbor2.loads(data)
    except DECODE_ERRORS:
        raise BadEncoding(field, "cbor", "the content is not CBOR") from None
    if isinstance(message, cbor2.CBORTag):
        if message.tag != COSE_SIGN1_TAG:
            raise BadEncoding(field, "cose", "the content is not a COSE_Sign1")
        message = message.value
    # cbor2 hands a tag's content back immutable (tuple, frozendict), untagged content as list/dict.
    if not (isinstance(message, list | tuple) and len(message) == 4):
        raise BadEncoding(field, "cose", "a COSE_Sign1 is an array of four")
    protected, unprotected, payload, signature = message
    if not (isinstance(protected, bytes) and isinstance(unprotected, Mapping)):
        raise BadEncoding(field, "cose", "the COSE headers are malformed")
    if not (isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise BadEncoding(field, "cose", "payload and signature are byte strings")
    return protected, unprotected, payload, signature


def verify1(data: bytes, key_set: KeySet, *, field: str = "credential") -> tuple[PublicKey, bytes]:
    """Check a COSE_Sign1 against the key set; returns the key that signed and the payload.
    Raises BadEncoding, UnknownKey, UnsupportedAlgorithm or BadSignature."""
    protected, unprotected, payload, signature = _structure(data, field)
    try:
        headers = cbor2.loads(protected) if protected else {}
    except DECODE_ERRORS:
        raise BadEncoding(field, "cose", "the protected header is not CBOR") from None
    if not isinstance(headers, dict):
        raise BadEncoding(field, "cose", "the protected header is not a map")
    kid = headers.get(HEADER_KID, unprotected.get(HEADER_KID))
    if not isinstance(kid, bytes):
        raise BadEncoding(field, "kid", "the COSE header names no key (kid)")
    alg_id = headers.get(HEADER_ALG)
    if alg_id not in _ALGORITHM_NAMES:
        raise UnsupportedAlgorithm("alg", "unsupported", f"COSE algorithm {alg_id!r} is not supported")
    try:
        kid_text = kid.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEncoding(field, "kid", "the kid is not UTF-8") from None
    key = key_set.verify(
        kid=kid_text, alg=_ALGORITHM_NAMES[alg_id], data=_sig_structure(protected, payload), signature=signature
    )
    return key, payload
