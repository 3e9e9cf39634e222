"""Real requests through uvicorn (access log on) to a kit service whose handler logs carelessly:
query codes, tokens, SMS codes, ID numbers and mobiles never reach the log output in clear."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import APIRouter, Request

from kit.app import ServiceParts, create_service_app
from kit.logs import get_logger
from kit.natsd import free_port
from kit.settings import ServiceSettings

ID_NUMBER = "11010519491231002X"
MOBILE = "13800138000"
QUERY_CODE = "QK7M2XPA"
SMS_CODE = "482913"
ACCESS_TOKEN = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMTAxMDUxOTQ5MTIzMTAwMlgifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
REFRESH_TOKEN = "rt_Zm9vYmFyYmF6cXV4cXV1eA"
SECRETS = (ID_NUMBER, MOBILE, QUERY_CODE, SMS_CODE, ACCESS_TOKEN, REFRESH_TOKEN, "Zm9vYmFyYmF6cXV4cXV1eA")


@asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """The app under uvicorn with its access log, on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", access_log=True, log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "server did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def careless_router() -> APIRouter:
    router = APIRouter()
    log = get_logger("careless")

    @router.api_route("/progress/{case_no}", methods=["GET", "POST"])
    async def progress(case_no: str, request: Request) -> dict:
        body = (await request.body()).decode()
        # Everything a handler might be tempted to log: headers, query, raw body, an SMS text.
        log.info("request seen", headers=dict(request.headers), query=str(request.url.query), body=body)
        log.info(f"raw body {body} for {request.url}")
        log.info("sms sent", text=f"【一网通办】您的登录验证码为{SMS_CODE},5分钟内有效。", to=MOBILE)
        log.info("case submitted", query_code=QUERY_CODE, applicant=ID_NUMBER, mobile=f"+86{MOBILE}")
        return {"case_no": case_no}

    return router


async def test_a_real_request_leaves_no_secret_in_the_logs(capsys, tmp_path):
    settings = ServiceSettings(
        service_name="careless", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", nats_enabled=False
    )
    app = create_service_app(ServiceParts(settings=settings, title="careless", routers=[careless_router()]))
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            f"/progress/C20261130000001?code={QUERY_CODE}&mobile={MOBILE}&id_number={ID_NUMBER}",
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "X-Mobile": MOBILE},
            json={"refresh_token": REFRESH_TOKEN, "query_code": QUERY_CODE, "sms_code": SMS_CODE, "id": ID_NUMBER},
        )
        assert r.status_code == 200
        r = await client.get(f"/progress/C20261130000001?access_token={ACCESS_TOKEN}&refresh_token={REFRESH_TOKEN}")
        assert r.status_code == 200
    output = capsys.readouterr().err
    assert "C20261130000001" in output and "request seen" in output  # the logs were captured
    assert '"POST /progress/C20261130000001?code=[masked]' in output  # the access log line
    for secret in SECRETS:
        assert secret not in output, secret
