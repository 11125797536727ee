"""The DR drill, shortened, end to end as a user runs it: a sandbox of its own, then
`python -m ops.sandbox drill` (the real drctl in subprocesses against it), then its report.

Seed 1 draws the harder path `make drill` does not take: the dead region refuses connections,
Aurora refuses the managed failover (drctl detaches and promotes), so failback rebuilds the old
primary from a final snapshot of its stale cluster. Every figure asserted is a payments
engineer's: nothing lost, nothing charged twice, every currency balanced and equal to what was
sent, the commits the replica lacked at the kill recovered, planned switches losing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SEED = 1
# About 90 s: every procedure runs under a stream of payments (~300 sent in all: the stream
# goes on while drctl works).
PAYMENTS, RATE = 60, 5


def sandbox(
    sandbox_dir: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SANDBOX_DIR=str(sandbox_dir), SANDBOX_BIND="off")
    return subprocess.run(
        [sys.executable, "-m", "ops.sandbox", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    where = tmp_path_factory.mktemp("drill") / "sandbox"
    report = where.parent / "drill-report.json"
    try:
        started = sandbox(where, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        ran = sandbox(
            where, "drill", "--seed", str(SEED), "--payments", str(PAYMENTS),
            "--rate", str(RATE), "--report", str(report), timeout=600,
        )  # fmt: skip
        password = json.loads((where / "endpoints.json").read_text())["mysql"]["primary"][
            "password"
        ]
        logs = "".join(p.read_text() for p in (where / "drill").glob("*.log"))
        yield {
            "code": ran.returncode,
            "out": ran.stdout + ran.stderr,
            "report": json.loads(report.read_text()) if report.exists() else {},
            "secret_seen": password in ran.stdout + ran.stderr + logs,
        }
    finally:
        sandbox(where, "down")


def test_nothing_lost_nothing_charged_twice_every_currency_balanced(drill: dict[str, Any]) -> None:
    report = drill["report"]
    assert drill["code"] == 0 and report["passed"], drill["out"][-4000:]
    assert report["sent_total"] >= PAYMENTS
    for name, scenario in report["scenarios"].items():
        assert scenario["sent"] > 0, name
        assert (scenario["lost"], scenario["duplicated"]) == (0, 0), (name, scenario)
        assert not scenario["invalid_written"], name
        assert all(total == 0 for total in scenario["ledger_sums"].values()), name
    for currency, money in report["money"].items():
        assert money["entries_sum"] == 0, currency
        assert money["merchant_net"] == money["sent_net"], currency  # nothing twice, nothing lost
    assert all(report["checks"].values()), report["checks"]


def test_failover_detached_promoted_and_recovered_what_had_not_replicated(
    drill: dict[str, Any],
) -> None:
    failover = drill["report"]["scenarios"]["failover"]
    assert failover["timeline"]["promotion"] == "detach-and-promote"  # the managed one refused
    exposure = failover["exposure"]
    assert exposure["missing_in_the_end"] == []
    assert exposure["recovered_in_the_end"] == exposure["commits_not_replicated_at_kill"]
    moments = failover["timeline"]["moments"]
    order = ["failure_injected", "detected", "fenced", "promoted", "redrive_done"]
    times = [moments[name]["after_s"] for name in order]
    assert times == sorted(times), moments  # fenced before promoted, promoted before redrive
    detection = failover["detection"]
    assert detection["detected"] and detection["within_bound"], detection
    assert detection["source"].startswith("infra-global/dns.yaml")  # read, not hard-coded


def test_failback_rebuilt_the_old_primary_and_planned_switches_lose_nothing(
    drill: dict[str, Any],
) -> None:
    scenarios = drill["report"]["scenarios"]
    assert scenarios["failback"]["timeline"]["promotion"] == "B"  # rebuilt from a snapshot
    for name in ("failback", "switchover"):
        assert scenarios[name]["exposure"]["commits_not_replicated_at_promotion"] == 0, name
        assert scenarios[name]["timeline"]["drctl_exit"] == 0, name


def test_the_report_says_what_the_residual_window_was(drill: dict[str, Any]) -> None:
    window = drill["report"]["scenarios"]["failover"]["exposure"]["residual_window"]
    assert {"accepted_by_dead_region_not_yet_replicated", "in_ledger_in_the_end"} <= set(window)
    assert window["in_ledger_in_the_end"] == window["accepted_by_dead_region_not_yet_replicated"]
    assert "residual loss window" in drill["out"]
    assert not drill["secret_seen"]  # no database password in the drill's or drctl's output
