"""schemathesis against the gateway's merged OpenAPI, as a citizen (L2) and as an officer.

Every operation of every area is called with cases schemathesis generates from the document (valid
ones and invalid ones, a fixed budget, derandomized so a CI run is reproducible), and each answer is
held to the document itself: never a 5xx, a status code documented for that operation, the content
type documented for that status, and a body that validates against the documented schema.

Why not ``schemathesis.pytest.from_fixture``: the platform (and so the document) exists only once a
fixture has started it, and schemathesis 4.32.5's lazy loader sets ``request.node._nodeid``, which
pytest 9.2 no longer has. The loop below uses schemathesis' public strategy API
(``APIOperation.as_strategy``) under Hypothesis ``@given`` instead, and reports every failing
operation at once rather than stopping at the first.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ROLES

MAX_EXAMPLES = 15  # per operation and mode: 47 operations × 2 modes × 2 callers stay within two minutes
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Logging out ends the session whose token it carries: each such case gets a session of its own.
LOGOUT = "DELETE /api/v1/identity/sessions/current"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Not the API: probes, metrics and documentation pages, should the document ever list them.
NOT_API = re.compile(r"/(healthz|readyz|metrics|docs|redoc|openapi\.json)(/|$)")
BUDGET_SECONDS = 240  # per caller; what a CI run on 2 cores may spend here

HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run: a red CI run is reproducible locally
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found, in bounded time
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


@pytest.fixture(scope="package")
def api_schema(gateway_url, merged_openapi):
    """The merged document as the gateway serves it, loaded by schemathesis from its URL."""
    config = schemathesis.Config.from_dict({"base-url": gateway_url, "request-timeout": 30})
    return schemathesis.openapi.from_url(gateway_url + "/api/v1/openapi.json", config=config, timeout=30)


def _failure_lines(exc: BaseException) -> list[str]:
    """The failure's own lines, without its reproduction command (which would carry the bearer token)."""
    return [line.strip() for line in str(exc).splitlines() if line.strip() and "curl " not in line]


def _distinct(exc: BaseException) -> dict[str, str]:
    """Each distinct check failure in ``exc``: its title, and what the answer was (status, body)."""
    answer = [line for line in _failure_lines(exc) if line.startswith(("[", "`"))]
    found: dict[str, str] = {}
    for sub in getattr(exc, "exceptions", None) or (exc,):
        lines = _failure_lines(sub)
        title = lines[0] if lines else type(sub).__name__
        found[title] = " | ".join(lines[1:4] + answer[:2])[:500]
    return found


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_documented_and_no_server_error(role, api_schema, callers):
    calls: Counter[str] = Counter()
    failures: dict[str, dict[str, str]] = {}  # operation → distinct failure → one example of it
    started = time.monotonic()
    operations = [op for op in (r.ok() for r in api_schema.get_all_operations()) if not NOT_API.search(op.path)]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @HYPOTHESIS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                label = case.operation.label
                headers = callers.login(role) if label == LOGOUT else callers.headers(role)
                calls[label] += 1
                try:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as exc:  # recorded; the budget is still spent
                    for title, example in _distinct(exc).items():
                        failures.setdefault(label, {}).setdefault(title, example)

            try:
                run()
            except Unsatisfiable:
                # an operation with nothing to make invalid (no parameters, no body) has no negative case
                assert mode is GenerationMode.NEGATIVE, operation.label
    elapsed = time.monotonic() - started

    labels = {op.label for op in operations}
    documented = {
        f"{method.upper()} {path}"
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method in HTTP_METHODS and not NOT_API.search(path)
    }
    assert labels == documented and len(labels) >= 40, sorted(documented ^ labels)
    never_called = sorted(labels - set(calls))
    assert not never_called, f"schemathesis generated no case for {never_called}"
    assert sum(calls.values()) >= 4 * len(labels), f"only {sum(calls.values())} calls for {len(labels)} operations"
    assert elapsed < BUDGET_SECONDS, f"{elapsed:.0f} s for {sum(calls.values())} calls"
    report = [
        f"{label}:\n" + "\n".join(f"    {title}: {example}" for title, example in found.items())
        for label, found in sorted(failures.items())
    ]
    total = sum(calls.values())
    assert not failures, (
        f"{len(failures)} of {len(labels)} operations failed as {role} ({total} calls in {elapsed:.0f} s):\n"
        + "\n".join(report)
    )
