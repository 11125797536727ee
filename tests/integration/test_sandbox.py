"""The local sandbox CLI end to end, as a user runs it (`python -m ops.sandbox ...` in a
subprocess), in a SANDBOX_DIR of its own so it never meets a developer's running sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.sandbox.state import command_line
from tests.conftest import EVENTS, ROOT

pytestmark = pytest.mark.integration


def sandbox(sandbox_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["SANDBOX_DIR"] = str(sandbox_dir)
    return subprocess.run(
        [sys.executable, "-m", "ops.sandbox", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sandbox"
    yield path
    sandbox(path, "down")  # whatever the test did, leave nothing running


def last_line(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_up_invoke_demo_crash_down(sandbox_dir: Path) -> None:
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = sandbox(sandbox_dir, *args)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("up")
    state = json.loads((sandbox_dir / "state.json").read_text())
    pids = [p["pid"] for p in state["processes"]]
    assert {p["name"] for p in state["processes"]} == {"moto", "mariadb"}
    assert all(command_line(pid) for pid in pids)  # alive after `up` itself has exited
    env_json = json.loads((sandbox_dir / "env.json").read_text())["PaymentProcessorFunction"]
    assert env_json["DB_TLS"] == "false"
    assert env_json["SESSIONS_TABLE"] == "dr-payment-sessions-dev"
    assert env_json["AWS_ENDPOINT_URL"] == state["aws_endpoint_url"]
    endpoints = json.loads((sandbox_dir / "endpoints.json").read_text())
    assert endpoints["regions"] == {"primary": "us-east-1", "secondary": "us-west-2"}
    password = endpoints["mysql"]["primary"]["password"]

    again = run("up")
    assert "already running" in again.stdout
    assert json.loads((sandbox_dir / "state.json").read_text())["processes"] == state["processes"]

    charge = run("invoke", "PaymentProcessorFunction", str(EVENTS / "01_charge_usd.json"))
    assert last_line(charge) == {"payment_id": "pay-usd-0001", "outcome": "PROCESSED"}
    duplicate = run(
        "invoke", "PaymentProcessorFunction", str(EVENTS / "06_duplicate_charge_usd.json")
    )
    assert last_line(duplicate)["outcome"] == "DUPLICATE"

    demo = run("demo").stdout
    table = [line for line in demo.splitlines() if line.split(" ", 1)[0].endswith(".json")]
    rows = {line.split()[0]: line for line in table}
    not_for_the_bus = {"health_function_url.json"}  # a Function URL event
    assert set(rows) == {p.name for p in EVENTS.glob("*.json")} - not_for_the_bus
    assert "NOT ROUTED" in rows["14_other_detail_type.json"]
    assert " PROCESSED" in rows["01_charge_usd.json"]  # the demo resets the ledger first
    assert " DUPLICATE" in rows["06_duplicate_charge_usd.json"]
    assert "ledger totals per currency" in demo
    assert "USD       125.50   25.50" in demo
    assert "UNBALANCED" not in demo
    assert "rejected queue dr-payment-rejected-primary-dev: 7 events" in demo
    assert "standby queue dr-payment-standby-primary-dev: 0 events" in demo
    demo_log = (sandbox_dir / "demo.log").read_text()
    assert "pay-usd-0001" in demo_log and "4111 1111 1111 1111" not in demo_log

    assert all(password not in text for text in [*outputs, demo_log])

    # A crashed server makes the state stale: the next `up` stops the survivor, starts afresh.
    moto = next(p for p in state["processes"] if p["name"] == "moto")
    assert "moto_server" in " ".join(command_line(moto["pid"]) or [])
    os.kill(moto["pid"], signal.SIGKILL)
    fresh = run("up")
    assert "stale" in fresh.stdout and "sandbox up" in fresh.stdout
    assert all(command_line(pid) is None for pid in pids)
    pids = [p["pid"] for p in json.loads((sandbox_dir / "state.json").read_text())["processes"]]
    assert all(command_line(pid) for pid in pids)

    run("down")
    assert all(command_line(pid) is None for pid in pids)  # gone (a zombie counts as gone)
    assert not (sandbox_dir / "state.json").exists()
    assert "not running" in run("down").stdout


def test_invoke_unknown_function_exits_2(sandbox_dir: Path) -> None:
    result = sandbox(sandbox_dir, "invoke", "NoSuchFunction", str(EVENTS / "01_charge_usd.json"))

    assert result.returncode == 2
    assert "PaymentProcessorFunction" in result.stderr  # names the functions there are
