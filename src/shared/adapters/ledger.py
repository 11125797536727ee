"""The ledger's tables in SQL (pymysql): ``payments`` and ``ledger_entries``, the system of record.

MySQLLedger runs a unit of work (payment_processor.booking.book, which knows the rules) in one
READ COMMITTED transaction and commits it; this module knows SQL, transactions and MySQL's
error codes, not payments. It implements payment_processor.ports.LedgerStore and, with
_Transaction, LedgerTransaction (structurally: adapters do not import the domain).

What it guarantees: a duplicate key (a concurrent delivery won), a deadlock, a lock wait that
timed out, or a lost connection rolls back and runs the work again from the start, on a fresh
connection where the old one is in doubt; a lost COMMIT answer is safe because the work then
finds its row. Every statement, every lock wait and every retry fits in what the invocation has
left (shared.deadline): a stuck database ends in DeadlineExceeded / LedgerUnavailable, both
transient, before Lambda's timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pymysql
from pymysql.connections import Connection

from shared import deadline
from shared.adapters.mysql import ER_ACCESS_DENIED, MySQLConnector, set_io_timeout, time_left
from shared.errors import DeadlineExceeded, LedgerReadOnly, LedgerUnavailable
from shared.records import PaymentRecord, Posting

T = TypeVar("T")

ER_DUP_ENTRY = 1062
ER_OPTION_PREVENTS_STATEMENT = 1290  # --read-only: an Aurora reader/secondary, or fenced
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205
RETRYABLE_IN_PLACE = frozenset({ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT})

# Each read sees what has committed; the rows that matter are locked explicitly (a refund's
# charge: SELECT ... FOR UPDATE). Also avoids REPEATABLE READ's gap locks between concurrent
# inserts. Same statement on Aurora MySQL 3 and MariaDB.
READ_COMMITTED = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
# Row locks (InnoDB) and metadata locks (a migration's ALTER, FLUSH TABLES WITH READ LOCK) give up
# after this many whole seconds, set per session from the deadline. Both variables exist, with a
# minimum of 1, on Aurora MySQL 3 / MySQL 8 and MariaDB.
SET_LOCK_WAITS = "SET SESSION innodb_lock_wait_timeout = %s, SESSION lock_wait_timeout = %s"
# Kept back from a lock wait for the rest of the transaction and the sessions write after it.
LOCK_WAIT_RESERVE_SECONDS = 0.5
# An attempt needs a few round trips. With less than 1.5 s left MySQL's 1 s minimum lock wait
# may outlast the time left; the socket timeout (the time left) then ends the wait instead, the
# connection is dropped and the server rolls the transaction back: still clean.
MIN_ATTEMPT_SECONDS = 0.25

_COLUMNS = (
    "payment_id, type, original_payment_id, merchant_id, customer_id, amount_minor, currency, "
    "occurred_at, processed_at, processed_region, payload_hash, refunded_minor"
)
_INSERT_PAYMENT = f"INSERT INTO payments ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
_INSERT_POSTINGS = (
    "INSERT INTO ledger_entries (payment_id, account, amount_minor, currency) "
    "VALUES (%s, %s, %s, %s)"
)
_ADD_REFUNDED = "UPDATE payments SET refunded_minor = refunded_minor + %s WHERE payment_id = %s"
# Keyset paging on the primary key (drctl reconcile, through LedgerExportFunction).
_PAGE_SINCE = (
    f"SELECT {_COLUMNS} FROM payments WHERE processed_at >= %s AND payment_id > %s "
    "ORDER BY payment_id LIMIT %s"
)


def _record(row: tuple[Any, ...]) -> PaymentRecord:
    return PaymentRecord(
        payment_id=row[0],
        type=row[1],
        original_payment_id=row[2],
        merchant_id=row[3],
        customer_id=row[4],
        amount_minor=int(row[5]),
        currency=row[6],
        occurred_at=row[7].replace(tzinfo=UTC),
        processed_at=row[8].replace(tzinfo=UTC),
        processed_region=row[9],
        payload_hash=row[10],
        refunded_minor=int(row[11]),
    )


def _row(record: PaymentRecord) -> tuple[Any, ...]:
    """The INSERT values for a record, in _COLUMNS order (datetimes stored as naive UTC)."""
    return (
        record.payment_id,
        record.type,
        record.original_payment_id,
        record.merchant_id,
        record.customer_id,
        record.amount_minor,
        record.currency,
        record.occurred_at.astimezone(UTC).replace(tzinfo=None),
        record.processed_at.astimezone(UTC).replace(tzinfo=None),
        record.processed_region,
        record.payload_hash,
        record.refunded_minor,
    )


def payments_since(cursor: Any, *, since: datetime, after: str, limit: int) -> list[PaymentRecord]:
    """Payments processed at or after ``since`` (aware) with payment_id > ``after``, in
    payment_id order, at most ``limit``."""
    cursor.execute(_PAGE_SINCE, (since.astimezone(UTC).replace(tzinfo=None), after, limit))
    return [_record(row) for row in cursor.fetchall()]


def lock_wait_seconds(left: float) -> int:
    """Whole seconds a lock wait may take when ``left`` seconds remain (at least 1, MySQL's
    minimum, which may then outlast ``left``: see MIN_ATTEMPT_SECONDS)."""
    return max(1, int(left - LOCK_WAIT_RESERVE_SECONDS))


class _Retry(Exception):
    pass


class _Transaction:
    """LedgerTransaction over one cursor; every statement bounded by the time left."""

    def __init__(self, cursor: Any, bound: Callable[[], None]) -> None:
        self._cursor = cursor
        self._bound = bound

    def _execute(self, sql: str, args: Any) -> None:
        self._bound()
        self._cursor.execute(sql, args)

    def payment(self, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
        suffix = " FOR UPDATE" if lock else ""
        self._execute(
            f"SELECT {_COLUMNS} FROM payments WHERE payment_id = %s{suffix}", (payment_id,)
        )
        row = self._cursor.fetchone()
        return None if row is None else _record(row)

    def add(self, record: PaymentRecord, postings: Sequence[Posting]) -> None:
        self._execute(_INSERT_PAYMENT, _row(record))
        self._bound()
        self._cursor.executemany(
            _INSERT_POSTINGS,
            [(p.payment_id, p.account, p.amount_minor, p.currency) for p in postings],
        )

    def add_refunded(self, payment_id: str, amount_minor: int) -> None:
        self._execute(_ADD_REFUNDED, (amount_minor, payment_id))


class MySQLLedger:
    def __init__(self, connector: MySQLConnector, *, attempts: int = 3) -> None:
        self._connector = connector
        self._attempts = attempts
        # Opened on first use, never at import: a SnapStart snapshot must not carry a socket.
        self._connection: Connection[Any] | None = None
        self._lock_wait: int | None = None  # what this session's lock waits are set to

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> Connection[Any]:
        return self._connector.connect(init_command=READ_COMMITTED)

    def _conn(self) -> Connection[Any]:
        if self._connection is None:
            self._connection = self._connect()
            self._lock_wait = None
        return self._connection

    def close(self) -> None:
        self._discard()

    def _discard(self) -> None:
        conn, self._connection = self._connection, None
        self._lock_wait = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass

    def _rollback(self, conn: Connection[Any]) -> None:
        try:
            set_io_timeout(conn, time_left(self._connector.io_timeout))
            conn.rollback()
        except (pymysql.err.MySQLError, DeadlineExceeded):
            self._discard()

    # -- time -----------------------------------------------------------------------------------
    def _bound_statement(self, conn: Connection[Any]) -> None:
        """The next statement's socket reads/writes end by the deadline (or the I/O timeout)."""
        set_io_timeout(conn, time_left(self._connector.io_timeout))

    def _bound_lock_waits(self, conn: Connection[Any], cursor: Any) -> None:
        active = deadline.current()
        wanted = (
            lock_wait_seconds(active.remaining())
            if active is not None
            else max(1, int(self._connector.io_timeout))
        )
        if wanted != self._lock_wait:  # one statement per connection in the steady state
            self._bound_statement(conn)
            cursor.execute(SET_LOCK_WAITS, (wanted, wanted))
            self._lock_wait = wanted

    # -- the unit of work -----------------------------------------------------------------------
    def run(self, work: Callable[[_Transaction], T]) -> T:
        last: BaseException | None = None
        for _ in range(self._attempts):
            active = deadline.current()
            if active is not None:
                active.check(MIN_ATTEMPT_SECONDS, "a ledger transaction")
            try:
                return self._run_once(work)
            except _Retry as exc:
                last = exc.__cause__ if exc.__cause__ is not None else exc
        raise LedgerUnavailable("ledger transaction did not complete") from last

    def _run_once(self, work: Callable[[_Transaction], T]) -> T:
        conn = self._conn()
        try:
            with conn.cursor() as cursor:
                self._bound_lock_waits(conn, cursor)
                result = work(_Transaction(cursor, lambda: self._bound_statement(conn)))
            self._bound_statement(conn)
            conn.commit()
            return result
        except pymysql.err.IntegrityError as exc:
            self._rollback(conn)
            if exc.args and exc.args[0] == ER_DUP_ENTRY:
                raise _Retry() from exc  # a concurrent delivery won: the retry reads its row
            raise LedgerUnavailable(f"ledger integrity error {exc.args[0]}") from exc
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code == ER_OPTION_PREVENTS_STATEMENT:
                self._rollback(conn)
                raise LedgerReadOnly() from exc
            if code in RETRYABLE_IN_PLACE:
                self._rollback(conn)
                raise _Retry() from exc
            if code == ER_ACCESS_DENIED:
                self._connector.invalidate_credentials()
            # Anything else (connection lost, socket timeout): the connection's state is
            # unknown; start again on a fresh one.
            self._discard()
            raise _Retry() from exc
        except DeadlineExceeded:
            self._discard()  # no time to wait for a ROLLBACK: closing the session rolls back
            raise
        except Exception:
            self._rollback(conn)  # the work refused (a business rule): nothing was written
            raise
        except BaseException:
            self._discard()
            raise
