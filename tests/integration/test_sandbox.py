"""The local sandbox CLI end to end, as a user runs it (`python -m ops.sandbox ...` in a
subprocess), in a SANDBOX_DIR of its own so it never meets a developer's running sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ops.sandbox.state import command_line
from tests.conftest import EVENTS, ROOT

pytestmark = pytest.mark.integration


def sandbox(sandbox_dir: Path, *args: str, bind: str = "off") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["SANDBOX_DIR"] = str(sandbox_dir)
    env["SANDBOX_BIND"] = bind  # the docker bridge is test_sam_local's business
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


def last_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def payment_on(mysql: dict[str, Any], payment_id: str, wait: float = 30.0) -> bool:
    """Whether the server endpoints.json describes has the payment (as the app user), polling
    up to `wait` seconds for replication to deliver it."""
    deadline = time.monotonic() + wait
    while True:
        with (
            pymysql.connect(
                host=mysql["host"],
                port=mysql["port"],
                user=mysql["user"],
                password=mysql["password"],
                database=mysql["database"],
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT 1 FROM payments WHERE payment_id = %s", (payment_id,))
            if cur.fetchone():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


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
    assert {p["name"] for p in state["processes"]} == {
        "moto",
        "front",  # the AWS endpoint everything uses; moto is behind it
        "mariadb-us-east-1",
        "mariadb-us-west-2",
    }
    assert all(command_line(pid) for pid in pids)  # alive after `up` itself has exited
    env_json = json.loads((sandbox_dir / "env.json").read_text())["PaymentProcessorFunction"]
    assert env_json["DB_TLS"] == "false"
    assert env_json["SESSIONS_TABLE"] == "dr-payment-sessions-dev"
    assert env_json["AWS_ENDPOINT_URL"] == state["aws_endpoint_url"]
    endpoints = json.loads((sandbox_dir / "endpoints.json").read_text())
    assert endpoints["regions"] == {"primary": "us-east-1", "secondary": "us-west-2"}
    mysql = endpoints["mysql"]
    password = mysql["primary"]["password"]
    # Each region names its own server; us-west-2's is the read-only replica of us-east-1's.
    assert mysql["primary"] == mysql["us-east-1"] and mysql["secondary"] == mysql["us-west-2"]
    assert mysql["us-east-1"]["role"] == "primary" and not mysql["us-east-1"]["read_only"]
    assert mysql["us-west-2"]["role"] == "replica" and mysql["us-west-2"]["read_only"]
    assert mysql["us-west-2"]["replicates_from"] == endpoints["mysql_writer"] == "us-east-1"
    assert mysql["us-east-1"]["port"] != mysql["us-west-2"]["port"]
    env_secondary = json.loads((sandbox_dir / "env.secondary.json").read_text())
    # Both regions' functions use the global writer endpoint (it follows the writer), as in AWS.
    writer_endpoint = endpoints["mysql_global_writer"]["port"]
    assert writer_endpoint not in (mysql["us-east-1"]["port"], mysql["us-west-2"]["port"])
    assert env_json["DB_PORT"] == str(writer_endpoint)
    for function in ("PaymentProcessorFunction", "HealthFunction"):
        assert env_secondary[function]["DB_PORT"] == str(writer_endpoint)
        assert env_secondary[function]["AWS_REGION"] == "us-west-2"
        assert env_secondary[function]["DB_SECRET_ID"] == "dr-payment-aurora-app-dev"
    docker_env = json.loads((sandbox_dir / "env.docker.json").read_text())
    assert docker_env["PaymentProcessorFunction"]["DB_HOST"] == "host.docker.internal"

    again = run("up")
    assert "already running" in again.stdout
    assert json.loads((sandbox_dir / "state.json").read_text())["processes"] == state["processes"]

    charge = run("invoke", "PaymentProcessorFunction", str(EVENTS / "01_charge_usd.json"))
    assert last_line(charge) == {"payment_id": "pay-usd-0001", "outcome": "PROCESSED"}
    assert payment_on(mysql["us-west-2"], "pay-usd-0001")  # replicated to us-west-2
    health = str(EVENTS / "health_function_url.json")
    # Nothing schedules the monitor here: before it has run, the passive region cannot prove its
    # copy is fresh. The active region's run writes the heartbeat and measures the ledger's lag
    # into us-west-2 end to end; AWS's own figures (none in moto) come out missing, not 0.
    stale = last_line(run("invoke", "HealthFunction", health, "--role", "secondary"))
    assert (stale["statusCode"], stale["body"]) == (503, "UNHEALTHY")
    schedule = str(EVENTS / "replication_monitor_schedule.json")
    figures = last_line(run("invoke", "ReplicationMonitorFunction", schedule))
    assert figures["role"] == "active"
    [canary] = [f for f in figures["published"] if f["metric"] == "CanaryLagSeconds"]
    assert (canary["store"], canary["target_region"]) == ("aurora", "us-west-2")
    assert 0 <= canary["value"] < 1  # no delay: seen within the first polls
    missing = {(f["metric"], f.get("store")) for f in figures["missing"]}
    assert ("ReplicationLagSeconds", "dynamodb") in missing
    # The passive region's health sees its own (read-only) replica, heartbeat fresh: HEALTHY.
    passive = last_line(run("invoke", "HealthFunction", health, "--role", "secondary"))
    assert (passive["statusCode"], passive["body"]) == (200, "HEALTHY")
    duplicate = run(
        "invoke", "PaymentProcessorFunction", str(EVENTS / "06_duplicate_charge_usd.json")
    )
    assert last_line(duplicate)["outcome"] == "DUPLICATE"

    demo = run("demo").stdout
    table = [line for line in demo.splitlines() if line.split(" ", 1)[0].endswith(".json")]
    rows = {line.split()[0]: line for line in table}
    # a Function URL event, a schedule's event
    not_for_the_bus = {"health_function_url.json", "replication_monitor_schedule.json"}
    assert set(rows) == {p.name for p in EVENTS.glob("*.json")} - not_for_the_bus
    assert "NOT ROUTED" in rows["14_other_detail_type.json"]
    assert " PROCESSED" in rows["01_charge_usd.json"]  # the demo resets the ledger first
    assert " DUPLICATE" in rows["06_duplicate_charge_usd.json"]
    assert "ledger totals per currency" in demo
    assert "USD       125.50   25.50" in demo
    assert "UNBALANCED" not in demo
    assert "rejected queue dr-payment-rejected-primary-dev: 7 events" in demo
    assert "standby queue dr-payment-standby-primary-dev: 0 events" in demo
    # Again at once: SQS allows one PurgeQueue per minute, the reset empties queues anyway.
    assert run("demo").stdout.split("demo:", 1)[1] == demo.split("demo:", 1)[1]
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


def test_up_refuses_to_listen_beyond_the_machine(sandbox_dir: Path) -> None:
    result = sandbox(sandbox_dir, "up", bind="0.0.0.0")

    assert result.returncode == 1
    assert "refused" in result.stderr and "0.0.0.0" in result.stderr
    assert not (sandbox_dir / "state.json").exists()  # nothing was started


def test_invoke_unknown_function_exits_2(sandbox_dir: Path) -> None:
    result = sandbox(sandbox_dir, "invoke", "NoSuchFunction", str(EVENTS / "01_charge_usd.json"))

    assert result.returncode == 2
    assert "PaymentProcessorFunction" in result.stderr  # names the functions there are


def test_replication_drill_from_the_command_line(sandbox_dir: Path) -> None:
    """What `python -m ops.sandbox replication ...` does to a running sandbox, and that state,
    endpoints and `down` follow it: hold/release, then the writer killed, the replica promoted,
    the old writer rebuilt as its replica, every server still stopped by a verified PID."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = sandbox(sandbox_dir, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("up")
    endpoints = json.loads((sandbox_dir / "endpoints.json").read_text())
    east, west = endpoints["mysql"]["us-east-1"], endpoints["mysql"]["us-west-2"]

    held = last_line(run("replication", "hold"))["replicas"][0]
    assert (held["region"], held["sql_running"], held["io_state"]) == ("us-west-2", False, "Yes")
    run("invoke", "PaymentProcessorFunction", str(EVENTS / "01_charge_usd.json"))
    assert last_line(run("replication", "status"))["replicas"][0]["transactions_behind"] >= 1
    assert not payment_on(west, "pay-usd-0001", wait=0)
    released = last_line(run("replication", "release"))["replicas"][0]
    assert released["sql_running"] and payment_on(west, "pay-usd-0001")

    old_pids = {
        p["name"]: p["pid"]
        for p in json.loads((sandbox_dir / "state.json").read_text())["processes"]
    }
    run("replication", "kill", "us-east-1")
    assert command_line(old_pids["mariadb-us-east-1"]) is None
    assert "already running" in run("up").stdout  # a region killed on purpose is not stale
    promoted = last_line(run("replication", "promote", "us-west-2"))
    assert promoted["writer"] == "us-west-2"
    rebuilt = last_line(run("replication", "rebuild", "us-east-1"))["replicas"][0]
    assert (rebuilt["region"], rebuilt["source"]) == ("us-east-1", "us-west-2")

    endpoints = json.loads((sandbox_dir / "endpoints.json").read_text())
    assert endpoints["mysql_writer"] == "us-west-2"
    assert endpoints["mysql"]["us-east-1"]["role"] == "replica"
    assert endpoints["mysql"]["us-east-1"]["port"] == east["port"]  # same endpoint as before
    assert payment_on(endpoints["mysql"]["us-east-1"], "pay-usd-0001")
    state = json.loads((sandbox_dir / "state.json").read_text())
    pids = {p["name"]: p["pid"] for p in state["processes"]}
    assert pids["mariadb-us-east-1"] != old_pids["mariadb-us-east-1"]
    assert all(command_line(pid) for pid in pids.values())

    run("down")
    assert all(command_line(pid) is None for pid in pids.values())
