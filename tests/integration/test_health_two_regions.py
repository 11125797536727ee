"""HealthFunction's real handler in both regions, against the two-region ledger and moto: each
region judges its own readiness (the passive one through its own replica), a dead primary does
not take the secondary down with it, and a dependency that accepts and never answers costs one
budget, not a hang. The public answer is a status and a token, never an error text."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from health.checks import AURORA_REPLICA, AURORA_WRITER
from tests.conftest import started_replica_pair
from tests.integration.two_regions import TwoRegions, two_regions

pytestmark = pytest.mark.integration

ANSWERS = {(200, "HEALTHY"), (503, "UNHEALTHY")}


def answer(response: dict[str, Any]) -> tuple[int, str]:
    """The public answer, checked to carry nothing else (no error text, no check names)."""
    assert set(response) == {"statusCode", "headers", "body"}
    pair = (response["statusCode"], response["body"])
    assert pair in ANSWERS, pair
    return pair


@pytest.fixture
def regions(replicated_ledger: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoRegions]:
    with two_regions(replicated_ledger, monkeypatch) as both:
        yield both


@pytest.fixture
def own_pair(tmp_path: Path) -> Iterator[Any]:
    """A replica pair of this test's own (it kills a server)."""
    with started_replica_pair(tmp_path / "pair") as pair:
        yield pair


def failed_checks(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The failed checks of the latest unhealthy answer, with their reasons (from its log)."""
    record = [r for r in caplog.records if r.getMessage().startswith("health checks failed")][-1]
    checks = record.__dict__["checks"]
    return {name: check["detail"] for name, check in checks.items() if not check["ok"]}


def test_all_up_both_regions_answer_healthy_the_passive_one_through_its_replica(
    regions: TwoRegions, caplog: pytest.LogCaptureFixture
) -> None:
    regions.monitor("primary")  # the active region's heartbeat, as every minute in AWS

    assert answer(regions.health("primary")) == (200, "HEALTHY")
    assert answer(regions.health("secondary")) == (200, "HEALTHY")
    passed = [r for r in caplog.records if r.getMessage() == "health checks passed"]
    roles = {r.__dict__["role"]: set(r.__dict__["checks"]) for r in passed}
    assert roles == {
        "active": {"dynamodb", AURORA_WRITER, "s3"},
        "passive": {"dynamodb", AURORA_REPLICA, "s3"},
    }


def test_the_primary_dies_the_secondary_stays_healthy_while_its_copy_is_fresh(
    own_pair: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with two_regions(own_pair, monkeypatch) as regions:
        regions.monitor("primary")
        own_pair.wait_caught_up()

        own_pair.kill("us-east-1")

        assert answer(regions.health("primary")) == (503, "UNHEALTHY")
        assert set(failed_checks(caplog)) == {AURORA_WRITER}
        # Nothing in the passive region's answer crosses to the dead one: its own replica,
        # its heartbeat a few seconds old, under the threshold.
        assert answer(regions.health("secondary")) == (200, "HEALTHY")
        # ...until the copy is older than the threshold: then it says so.
        time.sleep(1.1)
        stale = regions.health("secondary", REPLICA_LAG_THRESHOLD_SECONDS="1")
        assert answer(stale) == (503, "UNHEALTHY")
        assert failed_checks(caplog)[AURORA_REPLICA].startswith("replica copy")


class SilentServer:
    """A loopback TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._socket.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._socket.close()


def test_a_ledger_that_accepts_and_never_answers_is_unhealthy_within_the_budget(
    regions: TwoRegions, caplog: pytest.LogCaptureFixture
) -> None:
    silent = SilentServer()
    try:
        started = time.monotonic()
        response = regions.health(
            "primary",
            DB_PORT=str(silent.port),
            HEALTH_BUDGET_SECONDS="1.2",
            HEALTH_CHECK_TIMEOUT_SECONDS="1.0",
        )
        seconds = time.monotonic() - started
        accepted = silent.accepted
    finally:
        silent.close()

    print(f"silent ledger: {response['statusCode']} {response['body']} after {seconds:.2f}s")
    assert accepted >= 1  # it was reached, and never answered
    assert answer(response) == (503, "UNHEALTHY")
    detail = failed_checks(caplog)[AURORA_WRITER]
    assert detail.startswith("no answer within") or "MySQL error" in detail
    assert str(silent.port) not in str(response)
