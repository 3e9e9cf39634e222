"""The enterprise registry (法人库 / 市场主体登记): who an enterprise is and who represents it.

Binding an enterprise asks the registry for its registered name, its legal representative's ID
number and its status (docs/adr/0009-identity-trust.md). The sandbox holds a seeded register and
behaves like the real system (latency, optional failures); the HTTP implementation asks the real
one.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx


class RegistryUnavailable(Exception):
    """The enterprise registry did not answer; the applicant may try again later."""


@dataclass(frozen=True)
class EnterpriseRecord:
    """One entry of the enterprise register."""

    uscc: str
    name: str
    legal_representative: str  # the legal representative's resident ID number
    status: str  # as the register says it: 存续, 在业, 吊销, 注销, 迁出, 停业


class EnterpriseRegistry(Protocol):
    async def lookup(self, uscc: str) -> EnterpriseRecord | None:
        """The register's entry for ``uscc``, or None when the register has no such enterprise."""
        ...


# The sandbox register. Its enterprises and legal representatives are the ones the demo, the
# service tests and the end-to-end journeys use (JOURNEYS.md J3/J4); two are no longer active so
# that the refusal can be tried. Codes are real-format GB 32100 codes (python-stdnum's vectors).
SANDBOX_REGISTER: tuple[EnterpriseRecord, ...] = (
    # J3: 王五's restaurant company (tests/e2e/test_journeys.py, services/identity/tests).
    EnterpriseRecord("91110000600037341L", "某某餐饮有限公司", "440524188001010014", "存续"),
    # J4: the company 周八 founds in Dezhou (tests/e2e/test_case_journeys.py).
    EnterpriseRecord("913714007654321019", "德州某某科技有限公司", "371402198602020021", "存续"),
    # 张三 (the GB 11643 example number) runs a trading company and a sole proprietorship.
    EnterpriseRecord("91310115MA1K3BTP2B", "上海某某贸易有限公司", "11010519491231002X", "存续"),
    EnterpriseRecord("92340602MA2PBMEM24", "淮北市相山区某某小吃店", "11010519491231002X", "在业"),
    EnterpriseRecord("91340600MA2PBNE723", "淮北某某建材有限公司", "110105199003070017", "存续"),
    # 卫十四's company, whose agent's mandate is revoked in tests/e2e/test_trust.py.
    EnterpriseRecord("91371400777770001A", "德州信任测试有限公司", "371402197707070012", "存续"),
    # Not bindable: a revoked business licence and a cancelled (deregistered) company.
    EnterpriseRecord("9144030071526726XG", "深圳某某电子有限公司", "440524188001010014", "吊销"),
    EnterpriseRecord("91620105L015101280", "兰州某某商贸有限公司", "11010519491231002X", "注销"),
)


class SandboxEnterpriseRegistry:
    """A seeded register with a little latency and an optional failure rate, like the real one.

    ``extra_file`` (setting ``enterprise_registry_sandbox_file``) names a JSON list of
    ``{uscc, name, legal_representative, status}`` objects added to (or replacing) the seed.
    """

    def __init__(
        self,
        *,
        delay_ms: int = 5,
        failure_rate: float = 0.0,
        records: tuple[EnterpriseRecord, ...] = SANDBOX_REGISTER,
        extra_file: str = "",
    ) -> None:
        self.delay_ms = delay_ms
        self.failure_rate = failure_rate
        self.records = {record.uscc: record for record in records}
        if extra_file:
            for item in json.loads(Path(extra_file).read_text(encoding="utf-8")):
                record = EnterpriseRecord(**item)
                self.records[record.uscc] = record

    async def lookup(self, uscc: str) -> EnterpriseRecord | None:
        await asyncio.sleep(self.delay_ms / 1000)
        if self.failure_rate and random.random() < self.failure_rate:
            raise RegistryUnavailable("sandbox registry did not answer")
        return self.records.get(uscc)


class HttpEnterpriseRegistry:
    """The real register: ``GET {url}/{uscc}`` with an API key; 404 means no such enterprise, else
    ``{"uscc", "name", "legal_representative", "status"}``."""

    def __init__(
        self, url: str, api_key: str, timeout: float, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.transport = transport  # tests put a mock here

    async def lookup(self, uscc: str) -> EnterpriseRecord | None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.get(f"{self.url}/{uscc}", headers={"X-Api-Key": self.api_key})
            if response.status_code == 404:
                return None
            response.raise_for_status()
            body = response.json()
            record = EnterpriseRecord(
                uscc=str(body["uscc"]),
                name=str(body["name"]),
                legal_representative=str(body["legal_representative"]).upper(),
                status=str(body["status"]),
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise RegistryUnavailable(type(exc).__name__) from exc
        if record.uscc != uscc:  # an answer about another enterprise is no answer
            raise RegistryUnavailable("registry answered for another code")
        return record
