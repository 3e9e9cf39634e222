"""QR credential, public verification, status list and key set through HTTP, read back by real decoders."""

from __future__ import annotations

import base64
import io
from datetime import datetime

import zxingcpp
from PIL import Image

from services.licence.domain.credential import decode_and_verify
from services.licence.domain.signing import KeySet
from services.licence.domain.status_list import LicenceStatus, verify_status_list
from services.licence.tests.conftest import ZHANG_SAN, enterprise, issue, officer, person


async def test_qr_is_signed_readable_and_verifies_offline_and_online(licence):
    food = await issue(licence)
    path = f"/licences/{food['identifier']}"
    assert (await licence.get(path + "/qr", headers=person())).status_code == 404  # not the holder
    assert (await licence.get(path + "/qr", headers=officer())).status_code == 403  # the issuer reads, no QR
    qr = (await licence.get(path + "/qr", headers=enterprise())).json()
    assert qr["text"].startswith("YWL1:") and qr["version"] == 1
    image = Image.open(io.BytesIO(base64.b64decode(qr["png_base64"])))
    [decoded] = zxingcpp.read_barcodes(image)
    assert decoded.text == qr["text"]
    keys = KeySet.from_jwks((await licence.get("/keys")).json())
    verified = decode_and_verify(decoded.text, keys, now=datetime(2026, 11, 3))
    assert str(verified.claims.identifier) == food["identifier"] and verified.claims.licence_number == food["number"]
    online = (await licence.post("/licences/verify", json={"text": qr["text"]})).json()
    assert online["status"] == "valid" and online["claims"]["identifier"] == food["identifier"]
    await licence.post(path + "/revoke", json={"reason": "吊销"}, headers=officer())
    assert (await licence.post("/licences/verify", json={"text": qr["text"]})).json()["status"] == "revoked"
    altered = qr["text"][:-3] + ("AAA" if not qr["text"].endswith("AAA") else "BBB")
    assert (await licence.post("/licences/verify", json={"text": altered})).json()["status"] == "unknown"


async def test_verify_by_identifier_and_number_masks_a_person(licence):
    mine = await issue(licence, holder=ZHANG_SAN, holder_name="张三丰")
    found = (
        await licence.post("/licences/verify", json={"identifier": mine["identifier"], "number": mine["number"]})
    ).json()
    assert found["status"] == "valid" and found["claims"]["holder_name"] == "张**"
    wrong = await licence.post("/licences/verify", json={"identifier": mine["identifier"], "number": "1"})
    assert wrong.json() == {"status": "unknown", "claims": {}, "reason": "no licence with this identifier and number"}
    half = await licence.post("/licences/verify", json={"identifier": mine["identifier"]})
    assert half.status_code == 422


async def test_status_list_lists_revoked_and_suspended(licence):
    first, second, third = (await issue(licence)), (await issue(licence)), (await issue(licence))
    await licence.post(f"/licences/{first['identifier']}/revoke", json={"reason": "吊销"}, headers=officer())
    await licence.post(f"/licences/{second['identifier']}/suspend", json={"reason": "暂扣"}, headers=officer())
    licence.app.state.credentials._status_list = None  # the cache would serve the list of a minute ago
    response = await licence.get("/status-list")
    assert response.status_code == 200 and response.headers["content-type"] == "application/cose"
    keys = KeySet.from_jwks((await licence.get("/keys")).json())
    listed = verify_status_list(response.content, keys, now=licence.clock())
    assert dict(listed.entries) == {first["identifier"]: LicenceStatus.REVOKED,
                                    second["identifier"]: LicenceStatus.SUSPENDED}  # fmt: skip
    assert listed.status_of(third["identifier"]) is None


async def test_pdf_is_sealed_and_validates_against_the_issuers_root(database_url, nats_server):
    import asyncio

    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kit.migrate import upgrade
    from services.licence.cli import seed_demo
    from services.licence.domain.pdf import validate_signed_pdf
    from services.licence.domain.test_pdf import _certificate, _name
    from services.licence.main import create_app
    from services.licence.tests.conftest import fetch_keys, settings_for

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(_name("yiwang test root"), _name("yiwang test root"), ca_key.public_key(), ca_key, ca=True)
    seal_key = ec.generate_private_key(ec.SECP256R1())
    seal = _certificate(_name("德州市市场监督管理局 电子印章"), ca.subject, seal_key.public_key(), ca_key, ca=False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = seal_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()  # fmt: skip
    await asyncio.to_thread(upgrade, "services.licence", database_url)
    await seed_demo(database_url)
    settings = settings_for(
        database_url, nats_server.url, pdf_seal_key=key_pem, pdf_seal_certificates=pem(seal) + pem(ca)
    )
    app = create_app(settings, key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://licence") as client:
            food = await issue(client)
            assert (await client.get(f"/licences/{food['identifier']}/pdf", headers=person())).status_code == 404
            response = await client.get(f"/licences/{food['identifier']}/pdf", headers=enterprise())
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    check = await asyncio.to_thread(validate_signed_pdf, response.content, trust_roots=[ca])
    assert check.ok and "电子印章" in check.signer


async def test_pdf_without_a_seal_is_not_handed_out(licence):
    food = await issue(licence)
    response = await licence.get(f"/licences/{food['identifier']}/pdf", headers=enterprise())
    assert response.status_code == 501


async def test_verification_is_limited_per_client_the_gateway_names(licence):
    from services.licence.api import routes

    routes._VERIFY_WINDOWS.clear()
    limit = licence.app.state.licence.settings.verify_per_minute
    body = {"identifier": "1.2.156.3005.2.x", "number": "1"}
    one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
    answers = [(await licence.post("/licences/verify", json=body, headers=one)).status_code for _ in range(limit + 1)]
    assert answers[:limit] == [200] * limit and answers[-1] == 429
    # another client behind the same gateway has a window of its own
    assert (await licence.post("/licences/verify", json=body, headers=other)).status_code == 200
    routes._VERIFY_WINDOWS.clear()


async def test_a_sandbox_platform_seals_with_a_development_seal_no_validator_trusts(
    database_url, nats_server, tmp_path
):
    import asyncio

    import httpx

    from kit.migrate import upgrade
    from services.licence.cli import seed_demo
    from services.licence.domain.pdf import development_seal, validate_signed_pdf
    from services.licence.main import create_app
    from services.licence.tests.conftest import fetch_keys, settings_for

    await asyncio.to_thread(upgrade, "services.licence", database_url)
    await seed_demo(database_url)
    settings = settings_for(database_url, nats_server.url, sandbox=True,
                            signing_key_file=str(tmp_path / "licence-signing-key.json"))  # fmt: skip
    app = create_app(settings, key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://licence") as client:
            food = await issue(client)
            response = await client.get(f"/licences/{food['identifier']}/pdf", headers=enterprise())
    assert response.status_code == 200 and (tmp_path / "licence-dev-seal.pem").exists()
    _, stranger_root = development_seal("another platform")
    check = await asyncio.to_thread(validate_signed_pdf, response.content, trust_roots=[stranger_root])
    assert check.intact and check.valid and not check.trusted and "开发用电子印章（不可信）" in check.signer
