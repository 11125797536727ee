"""The two-region ledger: us-west-2's MariaDB is a real binlog replica of us-east-1's, read-only
as Aurora Global's secondary is, and the harness can lag it, hold it, break it, and fail over
(kill, promote, rebuild) as a drill will. Payments are written by the real handler."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ops.sandbox.replication import NotAReplica, Topology
from ops.sandbox.resources import REGIONS
from payment_processor.handler import lambda_handler
from shared.adapters import ledger_schema
from tests.conftest import APP_PASSWORD, APP_USER, LambdaContextStub, load_event

pytestmark = pytest.mark.integration

EAST, WEST = REGIONS["primary"], REGIONS["secondary"]
CHARGE = "01_charge_usd.json"
ER_OPTION_PREVENTS_STATEMENT = 1290


def app_connection(server: Any) -> Any:
    """The functions' own user over TCP, as the handler connects."""
    return pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=APP_USER,
        password=APP_PASSWORD,
        database="payments",
        autocommit=True,
    )


def payment_row(server: Any, payment_id: str) -> tuple[Any, ...] | None:
    with app_connection(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM payments WHERE payment_id = %s", (payment_id,))
        row = cur.fetchone()
        return None if row is None else tuple(row)


def entries_sum(server: Any, payment_id: str) -> tuple[int, int]:
    with app_connection(server) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COALESCE(SUM(amount_minor), 0) FROM ledger_entries"
            " WHERE payment_id = %s",
            (payment_id,),
        )
        count, total = cur.fetchone()
        return int(count), int(total)


def charge(payment_id: str) -> dict[str, Any]:
    event = load_event(CHARGE)
    event["id"] = f"evt-{payment_id}"
    event["detail"]["payment_id"] = payment_id
    return event


@pytest.fixture
def write_to(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real handler in us-east-1 (moto from `sandbox`), its ledger connection pointed at the
    server given: what the functions do when the writer endpoint names that server."""
    from payment_processor import wiring
    from shared import config

    def write(server: Any, payment_id: str) -> str:
        monkeypatch.setenv("DB_PORT", str(server.port))
        config.get_processor_settings.cache_clear()
        wiring.get_service.cache_clear()
        return str(lambda_handler(charge(payment_id), LambdaContextStub())["outcome"])

    write.parked = sandbox.parked  # type: ignore[attr-defined]
    return write


@pytest.fixture
def write_in_east(write_to: Any, replicated_ledger: Topology) -> Any:
    def write(payment_id: str) -> dict[str, str]:
        return {"outcome": write_to(replicated_ledger.primary, payment_id)}

    return write


def test_a_payment_written_in_us_east_1_appears_in_the_replica(
    write_in_east: Any, replicated_ledger: Topology
) -> None:
    assert write_in_east("pay-repl-0001")["outcome"] == "PROCESSED"

    status = replicated_ledger.wait_caught_up()

    east, west = replicated_ledger.primary, replicated_ledger.replica
    assert payment_row(west, "pay-repl-0001") == payment_row(east, "pay-repl-0001") is not None
    assert entries_sum(west, "pay-repl-0001") == (2, 0)
    assert status.region == WEST and status.source == EAST and status.replicating
    assert status.executed_gtid == status.source_gtid and status.transactions_behind == 0
    assert status.seconds_behind_master == 0 and status.last_error == ""


def test_a_delayed_replica_shows_the_payment_not_before_the_delay(
    write_in_east: Any, replicated_ledger: Topology
) -> None:
    delay = 3
    replicated_ledger.delay(delay)

    assert write_in_east("pay-repl-late")["outcome"] == "PROCESSED"
    committed = time.monotonic()
    right_after = replicated_ledger.status()
    seen_after = None
    while time.monotonic() - committed < delay + 30:
        if payment_row(replicated_ledger.replica, "pay-repl-late") is not None:
            seen_after = time.monotonic() - committed
            break
        time.sleep(0.1)

    assert right_after.delay_seconds == delay and right_after.replicating
    assert right_after.transactions_behind == 1  # received, held back by the delay
    assert seen_after is not None, "never replicated"
    # Ordering, not timing: binlog timestamps are whole seconds, so up to 1 s early, never more.
    assert seen_after >= delay - 1, f"applied {seen_after:.1f}s after commit, delay {delay}s"
    assert replicated_ledger.wait_caught_up().delay_seconds == delay


def test_the_app_user_cannot_write_on_the_replica(
    replicated_ledger: Topology, write_to: Any
) -> None:
    with app_connection(replicated_ledger.replica) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute(
                "UPDATE payments SET refunded_minor = refunded_minor + 1 WHERE payment_id = 'x'"
            )
    assert refused.value.args[0] == ER_OPTION_PREVENTS_STATEMENT

    # The handler meets the replica as it meets Aurora's secondary: read-only, event parked.
    assert write_to(replicated_ledger.replica, "pay-repl-ro") == "PARKED"
    assert [m["code"] for m in write_to.parked()] == ["DATABASE_READ_ONLY"]
    assert payment_row(replicated_ledger.primary, "pay-repl-ro") is None
    assert payment_row(replicated_ledger.replica, "pay-repl-ro") is None


def test_hold_keeps_changes_back_and_release_applies_them(
    write_in_east: Any, replicated_ledger: Topology
) -> None:
    replicated_ledger.hold()
    write_in_east("pay-repl-held-1")
    write_in_east("pay-repl-held-2")
    deadline = time.monotonic() + 30
    held = replicated_ledger.status()
    while held.received_gtid != held.source_gtid and time.monotonic() < deadline:
        held = replicated_ledger.status()  # the IO thread still receives while held
        time.sleep(0.05)

    assert held.io_state == "Yes" and not held.sql_running
    assert held.seconds_behind_master is None
    assert held.received_gtid == held.source_gtid != held.executed_gtid
    assert held.transactions_behind == 2
    assert payment_row(replicated_ledger.replica, "pay-repl-held-1") is None

    replicated_ledger.release()
    replicated_ledger.wait_caught_up()

    assert payment_row(replicated_ledger.replica, "pay-repl-held-1") is not None
    assert payment_row(replicated_ledger.replica, "pay-repl-held-2") is not None


def test_break_stops_replication_until_released(
    write_in_east: Any, replicated_ledger: Topology
) -> None:
    replicated_ledger.break_()
    write_in_east("pay-repl-broken")
    broken = replicated_ledger.status()

    assert broken.io_state == "No" and not broken.sql_running
    assert broken.seconds_behind_master is None
    assert broken.transactions_behind == 1
    assert broken.received_gtid == broken.executed_gtid  # nothing arrives at all
    assert payment_row(replicated_ledger.replica, "pay-repl-broken") is None

    replicated_ledger.release()

    assert replicated_ledger.wait_caught_up().replicating
    assert payment_row(replicated_ledger.replica, "pay-repl-broken") is not None


def test_the_writer_has_no_replica_status(replicated_ledger: Topology) -> None:
    with pytest.raises(NotAReplica):
        replicated_ledger.status(EAST)


def test_unplanned_failover_promote_then_rebuild_the_old_writer(
    tmp_path: Path, write_to: Any
) -> None:
    """What the failover drill stands on: the writer dies with a change it never sent, the
    replica is promoted (that change is lost: the RPO), and the old region comes back as a fresh
    replica of the new writer; then the roles swap back the same way."""
    ledger = Topology.start(tmp_path, [EAST, WEST])
    try:
        with ledger.primary.root() as conn:
            ledger_schema.apply(conn, "payments")
            ledger_schema.ensure_app_user(conn, "payments", APP_USER, APP_PASSWORD)
        east, west = ledger.servers[EAST], ledger.servers[WEST]
        assert write_to(east, "pay-before") == "PROCESSED"
        ledger.wait_caught_up()
        ledger.break_()
        assert write_to(east, "pay-never-sent") == "PROCESSED"

        ledger.kill(EAST)
        cut_off = ledger.status(WEST)
        ledger.promote(WEST)

        assert cut_off.source_gtid is None and cut_off.transactions_behind is None
        assert ledger.writer == WEST and ledger.role(EAST) == "replica"
        assert payment_row(west, "pay-before") is not None
        assert payment_row(west, "pay-never-sent") is None
        assert write_to(west, "pay-after-failover") == "PROCESSED"  # writable now

        east = ledger.rebuild(EAST)
        rebuilt = ledger.wait_caught_up(EAST)

        assert rebuilt.source == WEST and rebuilt.replicating
        assert payment_row(east, "pay-before") is not None
        assert payment_row(east, "pay-after-failover") is not None
        assert payment_row(east, "pay-never-sent") is None  # the old writer's history is gone
        assert write_to(east, "pay-on-the-rebuilt-replica") == "PARKED"  # read-only (1290)
        assert write_to(west, "pay-replicated-back") == "PROCESSED"
        ledger.wait_caught_up(EAST)
        assert payment_row(east, "pay-replicated-back") is not None

        # Failback: a planned switchover the same way round.
        ledger.fence(WEST)
        ledger.wait_caught_up(EAST)
        ledger.promote(EAST)
        west = ledger.rebuild(WEST)
        assert write_to(east, "pay-after-failback") == "PROCESSED"

        assert ledger.writer == EAST
        assert ledger.wait_caught_up(WEST).source == EAST
        assert payment_row(west, "pay-after-failback") is not None
        assert payment_row(west, "pay-replicated-back") is not None
    finally:
        ledger.stop()
