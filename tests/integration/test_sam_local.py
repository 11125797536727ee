"""`sam local invoke` against the sandbox, run by the very code README quotes
(ops/sandbox/sam_local.py: `make local-invoke` and `make sam-local-check` call it), in a real
Lambda-like container. Without a container runtime it skips and says why; it never passes
without having run a container.

The runtime: the Docker engine DOCKER_HOST or the default socket names, else a private dockerd
this test starts as root (docker.io installed by `make test` through `make container-runtime`'s
install step) and stops by PID at the end. The image is built once into that engine's data
folder (.sandbox-docker/, ~1 min). SKIP_SAM_LOCAL=1 skips it on purpose (and says so).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ops.sandbox import container_runtime, sam_local
from ops.sandbox.bridge import DEFAULT_BRIDGE, interface_address
from tests.conftest import ROOT, env_flag
from tests.log_capture import find_leaks, known_secrets

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
LOCK_WAIT_SECONDS = 900
# A handful, not all 15 (`make sam-local-check` runs all): a write, its redelivery, a rejected
# event carrying a card number, and the health endpoint.
EVENTS = [
    "events/01_charge_usd.json",
    "events/06_duplicate_charge_usd.json",
    "events/13_invalid_card_number_in_metadata.json",
    "events/health_function_url.json",
]


def test_readme_quotes_the_command_the_script_runs() -> None:
    """No second copy that can drift: README's command is what `sam_local command` prints, and
    `make local-invoke` runs `sam_local invoke`, which runs `sam_local.command(...)`."""
    printed = subprocess.run(
        [sys.executable, "-m", "ops.sandbox.sam_local", "command", *sam_local.EXAMPLE],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "SANDBOX_DIR"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    readme = README.read_text()
    makefile = (ROOT / "Makefile").read_text()

    assert printed == sam_local.display(sam_local.command(*sam_local.EXAMPLE))
    assert printed in readme.splitlines(), "README's sam local invoke line is not the script's"
    assert " ".join(sam_local.LOCAL_IMAGE_FLAGS) in readme
    assert "--docker-network" not in printed  # SAM CLI 1.170 ignores `host`
    assert "--add-host host.docker.internal:host-gateway" in printed
    recipe = r"\n(?:\t.*\n)*?\t.*ops\.sandbox\.sam_local"  # a target's recipe lines
    assert re.search(rf"^local-invoke:.*{recipe} invoke \$\(FN\) \$\(EVENT\)", makefile, re.M)
    assert re.search(rf"^sam-local-check:.*{recipe} check$", makefile, re.M)


@pytest.fixture(scope="session")
def container_engine() -> Iterator[container_runtime.Engine]:
    if env_flag("SKIP_SAM_LOCAL"):
        pytest.skip("SKIP_SAM_LOCAL is set: sam local invoke not run")
    # One such test at a time on this machine (other checkouts' runs wait): the one that started
    # the private dockerd stops it at the end, which must not happen under another's feet.
    with open(container_runtime.LOCK_DIR / "dr-payment-sam-local-test.lock", "a+") as lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"another sam local test held the lock {LOCK_WAIT_SECONDS}s")
                time.sleep(1)
        yield from _engine()


def _engine() -> Iterator[container_runtime.Engine]:
    started_here = container_runtime.find_engine() is None
    try:
        engine = container_runtime.start()
        container_runtime.build_image(engine)
    except container_runtime.Unavailable as exc:
        if started_here:
            container_runtime.stop()
        pytest.skip(f"no container runtime, sam local invoke not run: {exc}")
    try:
        yield engine
    finally:
        if started_here and engine.ours:
            print(container_runtime.stop())


def _charges(mysql: dict[str, Any]) -> int:
    """How many ledger rows pay-usd-0001 has on the server `mysql` (endpoints.json) names."""
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
        cur.execute("SELECT COUNT(*) FROM payments WHERE payment_id = 'pay-usd-0001'")
        return int(cur.fetchone()[0])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_sam_local_invoke_answers_as_make_invoke_does(
    container_engine: container_runtime.Engine, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SANDBOX_DIR=str(tmp_path / "sandbox"), DOCKER_HOST=container_engine.docker_host)
    if interface_address(DEFAULT_BRIDGE):
        env["SANDBOX_BIND"] = "docker"  # Linux: the sandbox must be reachable on docker0
    up = _run(["-m", "ops.sandbox", "up"], env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr

        check = _run(["-m", "ops.sandbox.sam_local", "check", *EVENTS], env)
        # What `make local-invoke FN=... EVENT=...` runs, with README's example.
        again = _run(["-m", "ops.sandbox.sam_local", "invoke", *sam_local.EXAMPLE], env)

        print(check.stdout)  # the table: answers and seconds per event
        assert check.returncode == 0, check.stdout + check.stderr[-3000:]
        assert f"{len(EVENTS)}/{len(EVENTS)} answers equal" in check.stdout
        rows = {line.split()[0]: line for line in check.stdout.splitlines()[1 : len(EVENTS) + 1]}
        assert " PROCESSED " in rows["01_charge_usd.json"]
        assert " DUPLICATE " in rows["06_duplicate_charge_usd.json"]
        assert " REJECTED " in rows["13_invalid_card_number_in_metadata.json"]
        assert " 200 HEALTHY " in rows["health_function_url.json"]
        assert "running: AWS_ACCESS_KEY_ID=sandbox" in check.stderr
        assert again.returncode == 0, again.stderr[-3000:]
        answer = json.loads(again.stdout.strip().splitlines()[-1])
        assert (answer["payment_id"], answer["outcome"]) == ("pay-usd-0001", "DUPLICATE")
        # Written once through the container, and replicated to us-west-2 like any other write.
        endpoints = json.loads((tmp_path / "sandbox" / "endpoints.json").read_text())
        assert _charges(endpoints["mysql"]["us-east-1"]) == 1
        deadline = time.monotonic() + 30
        while _charges(endpoints["mysql"]["us-west-2"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _charges(endpoints["mysql"]["us-west-2"]) == 1
        secrets = [
            *known_secrets(),
            ("test sandbox password", endpoints["mysql"]["primary"]["password"]),
        ]
        leaks = find_leaks(check.stderr + again.stderr, secrets)
        assert not leaks, leaks  # the functions' logs, read from the container
    finally:
        _run(["-m", "ops.sandbox", "down"], env)
