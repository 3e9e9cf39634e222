"""The short chaos run (issue 13): the cluster topology — its own PostgreSQL, a three-node NATS
cluster, two caseflow replicas behind the gateway — under a minute of load while one NATS node,
a caseflow replica (mid-request), the whole NATS cluster and PostgreSQL are killed and brought
back; then nothing the platform answered 2xx to may be missing and nothing may exist twice.
``make chaos`` is the long version (tools/chaos.py)."""

from __future__ import annotations

import pytest

from tools.chaos import MissingPostgres, postgres_bin_dir, run_chaos


def _postgres_missing() -> str:
    try:
        postgres_bin_dir()
    except MissingPostgres as exc:
        return str(exc)
    return ""


@pytest.mark.skipif(bool(_postgres_missing()), reason=_postgres_missing() or "PostgreSQL binaries found")
def test_nothing_accepted_is_lost_or_doubled_while_parts_are_killed(tmp_path):
    result = run_chaos(tmp_path, duration=60, replicas=1, caseflow_replicas=2, workers=16, seed="chaos-test")
    print(result.text)
    assert [fault.name for fault in result.faults] == ["nats-node", "caseflow-replica", "nats-cluster", "postgres"]
    counted = {check.name: check.counted for check in result.checks}
    # Every journey of the load got through at least once: there were promises to check.
    for name in ("people registered (201)", "cases submitted (201/200)", "officer actions (200)",
                 "department pushes (200)", "licence per approved case", "EMS shipment per approved case"):  # fmt: skip
        assert counted[name] > 0, f"no {name} to check:\n{result.text}"
    assert "NOT drained" not in result.text, result.text
    failed = [f"{c.name}: lost {c.lost}, doubled {c.doubled} {c.note}" for c in result.failures]
    assert not failed, "\n".join(failed) + "\n" + result.text
