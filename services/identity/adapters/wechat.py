"""WeChat login: exchanging a mini-program login code for an openid (jscode2session)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Protocol

import httpx


class WeChatCodeInvalid(Exception):
    """WeChat says the code is invalid, expired or already used (errcode 40029 / 40163)."""


class WeChatUnavailable(Exception):
    pass


class WeChatAuth(Protocol):
    async def openid_for(self, code: str) -> str: ...


class SandboxWeChat:
    """Deterministic like a test account: a code maps to one openid; each code works once.

    Codes starting with ``invalid`` are refused, as WeChat refuses an expired code.
    """

    def __init__(self, delay_ms: int = 5) -> None:
        self.delay_ms = delay_ms
        self._used: set[str] = set()

    async def openid_for(self, code: str) -> str:
        await asyncio.sleep(self.delay_ms / 1000)
        if not code or code.startswith("invalid") or code in self._used:
            raise WeChatCodeInvalid("errcode 40029: invalid code")
        self._used.add(code)
        # The user part of the code ("wx-<user>-<n>") picks the openid, so a user's codes all map to one.
        user = code.split("-")[1] if code.count("-") >= 2 else code
        return "o" + hashlib.sha256(user.encode()).hexdigest()[:27]


class HttpWeChat:
    def __init__(self, api_base: str, app_id: str, app_secret: str, timeout: float) -> None:
        self.api_base = api_base.rstrip("/")
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout = timeout

    async def openid_for(self, code: str) -> str:
        params = {"appid": self.app_id, "secret": self.app_secret, "js_code": code, "grant_type": "authorization_code"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(f"{self.api_base}/sns/jscode2session", params=params)
                body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatUnavailable(type(exc).__name__) from exc
        if body.get("errcode"):
            if body["errcode"] in (40029, 40163, 40226):
                raise WeChatCodeInvalid(f"errcode {body['errcode']}")
            raise WeChatUnavailable(f"errcode {body['errcode']}")
        return body["openid"]
