"""The population registry (L2) and the face check (L3) behind adapters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


class CheckUnavailable(Exception):
    """The external check did not answer; the citizen may try again later."""


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    reason: str = ""


class PopulationRegistry(Protocol):
    async def verify(self, id_number: str, name: str) -> CheckResult: ...


class FaceCheck(Protocol):
    async def verify(self, id_number: str, liveness_token: str) -> CheckResult: ...


class SandboxRegistry:
    """Deterministic outcomes for demos and tests.

    Sequence code (digits 15–17) ``999``: no such person; a name starting with ``假``: name mismatch;
    sequence code ``998``: the registry is down. Everyone else matches.
    """

    def __init__(self, delay_ms: int = 5) -> None:
        self.delay_ms = delay_ms

    async def verify(self, id_number: str, name: str) -> CheckResult:
        await asyncio.sleep(self.delay_ms / 1000)
        sequence = id_number[14:17]
        if sequence == "998":
            raise CheckUnavailable("registry timeout")
        if sequence == "999":
            return CheckResult(False, "no such person in the registry")
        if name.startswith("假"):
            return CheckResult(False, "name does not match the number")
        return CheckResult(True)


class SandboxFaceCheck:
    """A liveness token starting with ``live-`` passes; ``spoof-`` fails; anything else is refused."""

    def __init__(self, delay_ms: int = 5) -> None:
        self.delay_ms = delay_ms

    async def verify(self, id_number: str, liveness_token: str) -> CheckResult:
        await asyncio.sleep(self.delay_ms / 1000)
        if liveness_token.startswith("live-"):
            return CheckResult(True)
        return CheckResult(False, "face does not match the registry photo")


class HttpCheck:
    """Real registry / face service: POST JSON, answer {"passed": bool, "reason": str}."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout = timeout

    async def _post(self, payload: dict) -> CheckResult:
        body = await post_check(self.url, self.api_key, self.timeout, payload)
        return CheckResult(bool(body.get("passed")), str(body.get("reason", "")))

    async def verify(self, id_number: str, second: str) -> CheckResult:
        return await self._post({"id_number": id_number, "evidence": second})


async def post_check(url: str, api_key: str, timeout: float, payload: dict) -> Any:
    """POST ``payload`` as JSON with the API key header to a checking service: its JSON answer, or
    CheckUnavailable (no answer, not 2xx, not JSON)."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=payload, headers={"X-Api-Key": api_key})
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise CheckUnavailable(type(exc).__name__) from exc
