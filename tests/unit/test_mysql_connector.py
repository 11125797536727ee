"""The database waits derive from the invocation's deadline (a fake clock here: no time-asserts):
what the connector and the ledger ask pymysql and the server for, and that they refuse to start
what cannot finish in time."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from shared import deadline
from shared.adapters.ledger import MIN_ATTEMPT_SECONDS, MySQLLedger, lock_wait_seconds
from shared.adapters.mysql import MySQLConnector, set_io_timeout, time_left
from shared.errors import DeadlineExceeded


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class NoSecret:
    def get(self) -> Any:
        raise AssertionError("no secret may be read without time to use it")

    def invalidate(self) -> None:
        raise AssertionError("unexpected")


def _deadline(seconds: float, clock: FakeClock, margin: float = 2.0) -> deadline.Deadline:
    return deadline.Deadline(seconds, margin=margin, clock=clock)


def test_time_left_is_the_least_of_the_limits_and_the_deadline() -> None:
    clock = FakeClock()
    assert time_left(3.0, 10.0) == 3.0
    with _deadline(6.0, clock).active():  # 4 s after the margin
        assert time_left(3.0) == 3.0
        assert time_left(10.0) == 4.0
        clock.now += 3.5
        assert time_left(10.0) == pytest.approx(0.5)
        clock.now += 0.49
        with pytest.raises(DeadlineExceeded):
            time_left(10.0)


@pytest.mark.parametrize(
    ("left", "seconds"), [(28.0, 27), (4.0, 3), (2.0, 1), (1.5, 1), (1.2, 1), (300.0, 299)]
)
def test_lock_waits_end_before_the_deadline(left: float, seconds: int) -> None:
    assert lock_wait_seconds(left) == seconds
    if left >= 1.5:  # below, MySQL's 1 s minimum may outlast it: the socket timeout ends it
        assert seconds <= left - 0.5  # the server answers 1205 before the socket gives up


def test_pymysql_reads_its_timeouts_from_the_attributes_we_set() -> None:
    """set_io_timeout relies on pymysql's private _read_timeout/_write_timeout: pin them."""
    conn = pymysql.connections.Connection(defer_connect=True, read_timeout=9, write_timeout=9)
    assert (conn._read_timeout, conn._write_timeout) == (9, 9)
    set_io_timeout(conn, 0.75)
    assert (conn._read_timeout, conn._write_timeout) == (0.75, 0.75)
    source = pymysql.connections.Connection._read_packet.__code__.co_names
    assert "_read_timeout" in source, "pymysql no longer reads _read_timeout per packet"
    assert "_write_timeout" in pymysql.connections.Connection._write_bytes.__code__.co_names


def test_no_connect_is_attempted_without_time_left() -> None:
    clock = FakeClock()
    connector = MySQLConnector(
        host="127.0.0.1", port=1, database="payments", credentials=NoSecret(), tls=False
    )
    with _deadline(2.01, clock).active(), pytest.raises(DeadlineExceeded):
        connector.connect()


def test_no_transaction_is_started_without_time_for_one() -> None:
    clock = FakeClock()
    connector = MySQLConnector(
        host="127.0.0.1", port=1, database="payments", credentials=NoSecret(), tls=False
    )
    ledger = MySQLLedger(connector)
    with _deadline(2.0 + MIN_ATTEMPT_SECONDS - 0.01, clock).active():
        with pytest.raises(DeadlineExceeded):
            ledger.run(lambda tx: None)
