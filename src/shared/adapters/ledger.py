"""The Aurora MySQL ledger (pymysql): the system of record and the commit point.

One transaction writes the ``payments`` row and its balanced ``ledger_entries``. The primary key
on ``payments.payment_id`` plus the stored payload hash decide PROCESSED / DUPLICATE / CONFLICT;
a refund locks its charge row (SELECT ... FOR UPDATE) so concurrent refunds cannot pass it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pymysql
from pymysql.connections import Connection

from payment_processor.models import PaymentDetail, PaymentType
from payment_processor.ports import LedgerResult, Outcome, PaymentRecord
from shared.adapters.secrets import SecretCredentials
from shared.config import LedgerSettings
from shared.errors import (
    LedgerReadOnly,
    LedgerUnavailable,
    OriginalPaymentNotFound,
    PaymentRejected,
)

ER_DUP_ENTRY = 1062
ER_OPTION_PREVENTS_STATEMENT = 1290  # --read-only: an Aurora reader/secondary, or fenced
ER_ACCESS_DENIED = 1045
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205
# Connection-level failures: the connection is dropped and the transaction tried again. A commit
# whose answer was lost is safe to retry: the retry finds the row and answers DUPLICATE.
CONNECTION_ERRORS = frozenset({2003, 2006, 2013, 2014, 2045, 2055, 1927, 1053})
RETRYABLE_IN_PLACE = frozenset({ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT})

_COLUMNS = (
    "payment_id, type, original_payment_id, merchant_id, customer_id, amount_minor, currency, "
    "occurred_at, processed_at, processed_region, payload_hash, refunded_minor"
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
        record.occurred_at.replace(tzinfo=None),
        record.processed_at.replace(tzinfo=None),
        record.processed_region,
        record.payload_hash,
        record.refunded_minor,
    )


def _fetch(cur: Any, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
    suffix = " FOR UPDATE" if lock else ""
    cur.execute(f"SELECT {_COLUMNS} FROM payments WHERE payment_id = %s{suffix}", (payment_id,))
    row = cur.fetchone()
    return None if row is None else _record(row)


def ledger_accounts(payment: PaymentDetail) -> tuple[tuple[str, int], tuple[str, int]]:
    """Balanced entries: a charge moves value from the customer to the merchant, a refund back."""
    sign = 1 if payment.type is PaymentType.CHARGE else -1
    return (
        (f"merchant:{payment.merchant_id}", sign * payment.amount_minor),
        (f"customer:{payment.customer_id}", -sign * payment.amount_minor),
    )


class _Retry(Exception):
    pass


class MySQLLedger:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        database: str,
        credentials: SecretCredentials,
        region: str,
        tls: bool = True,
        tls_ca_file: str | None = None,
        connect_timeout: int = 3,
        io_timeout: int = 10,
        attempts: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._host = host
        self._port = port
        self._database = database
        self._credentials = credentials
        self._region = region
        self._tls = tls
        self._tls_ca_file = tls_ca_file
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._attempts = attempts
        self._clock = clock
        # Opened on first use, never at import: a SnapStart snapshot must not carry a socket.
        self._connection: Connection[Any] | None = None

    @classmethod
    def from_settings(
        cls, settings: LedgerSettings, region: str, *, provider: Any = None, **tuning: Any
    ) -> MySQLLedger:
        """The ledger as the settings describe it; ``tuning`` sets timeouts and attempts."""
        return cls(
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
            credentials=SecretCredentials(
                settings.db_secret_id, max_age=settings.secret_max_age_seconds, provider=provider
            ),
            region=region,
            tls=settings.db_tls,
            tls_ca_file=settings.db_tls_ca_file,
            **tuning,
        )

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> Connection[Any]:
        """A new connection as the application user. Access denied means the password changed
        (rotation, failover): the secret is fetched again, bypassing the cache, and tried once."""
        ssl_context = self._ssl_context()
        for last_try in (False, True):
            creds = self._credentials.get()
            try:
                return pymysql.connect(
                    host=self._host,
                    port=self._port,
                    user=creds.username,
                    password=creds.password,
                    database=self._database,
                    autocommit=False,
                    charset="utf8mb4",
                    # Each read sees what has committed; the rows that matter are locked
                    # explicitly (a refund's charge: SELECT ... FOR UPDATE). Also avoids
                    # REPEATABLE READ's gap locks between concurrent inserts. Same statement on
                    # Aurora MySQL 3 and MariaDB.
                    init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                    connect_timeout=self._connect_timeout,
                    read_timeout=self._io_timeout,
                    write_timeout=self._io_timeout,
                    ssl=ssl_context,
                )
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code == ER_ACCESS_DENIED:
                    self._credentials.invalidate()
                    if not last_try:
                        continue
                raise LedgerUnavailable(
                    f"cannot connect to the ledger (MySQL error {code})"
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _ssl_context(self) -> ssl.SSLContext | None:
        """Verified TLS (certificate chain and host name) unless turned off for a local server."""
        if not self._tls:
            return None
        try:
            return ssl.create_default_context(cafile=self._tls_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise LedgerUnavailable(
                f"CA bundle {self._tls_ca_file!r} unusable: `make build` packages it"
            ) from exc

    def _conn(self) -> Connection[Any]:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except pymysql.err.Error:
                pass
            self._connection = None

    def _discard(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass

    # -- write path ---------------------------------------------------------------------------
    def record(self, payment: PaymentDetail, payload_hash: str) -> LedgerResult:
        last: Exception | None = None
        for _ in range(self._attempts):
            try:
                return self._record_once(payment, payload_hash)
            except _Retry as exc:
                last = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise LedgerUnavailable("ledger transaction did not complete") from last

    def _record_once(self, payment: PaymentDetail, payload_hash: str) -> LedgerResult:
        conn = self._conn()
        try:
            with conn.cursor() as cur:
                return self._transaction(cur, conn, payment, payload_hash)
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
                self._credentials.invalidate()
            # Anything else: the connection's state is unknown; start again on a fresh one.
            self._discard()
            raise _Retry() from exc
        except (PaymentRejected, LedgerReadOnly):
            self._rollback(conn)
            raise
        except BaseException:
            self._discard()
            raise

    def _rollback(self, conn: Connection[Any]) -> None:
        try:
            conn.rollback()
        except pymysql.err.MySQLError:
            self._discard()

    def _transaction(
        self, cur: Any, conn: Connection[Any], payment: PaymentDetail, payload_hash: str
    ) -> LedgerResult:
        existing = _fetch(cur, payment.payment_id)
        if existing is not None:
            return self._answer_existing(cur, conn, existing, payload_hash)

        original: PaymentRecord | None = None
        if payment.type is PaymentType.REFUND:
            original = self._lock_original(cur, payment)
            # A redelivery of this refund may have committed while we waited for the charge's
            # lock. Under READ COMMITTED this read sees it: answer as for any existing payment
            # (DUPLICATE/CONFLICT), never as an over-refund. (No locking read: a gap lock on a
            # new id would let refunds of different charges deadlock on their inserts.)
            twin = _fetch(cur, payment.payment_id)
            if twin is not None:
                return self._answer_existing(cur, conn, twin, payload_hash)
            self._check_refund(original, payment)

        record = self._new_record(payment, payload_hash, self._clock())
        cur.execute(
            f"INSERT INTO payments ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
            _row(record),
        )
        cur.executemany(
            "INSERT INTO ledger_entries (payment_id, account, amount_minor, currency) "
            "VALUES (%s, %s, %s, %s)",
            [
                (payment.payment_id, account, amount, payment.currency)
                for account, amount in ledger_accounts(payment)
            ],
        )
        records = [record]
        if original is not None:
            cur.execute(
                "UPDATE payments SET refunded_minor = refunded_minor + %s WHERE payment_id = %s",
                (payment.amount_minor, original.payment_id),
            )
            records.append(
                replace(original, refunded_minor=original.refunded_minor + payment.amount_minor)
            )
        conn.commit()
        return LedgerResult(outcome=Outcome.PROCESSED, records=tuple(records))

    def _answer_existing(
        self, cur: Any, conn: Connection[Any], existing: PaymentRecord, payload_hash: str
    ) -> LedgerResult:
        if existing.payload_hash != payload_hash:
            conn.rollback()
            return LedgerResult(outcome=Outcome.CONFLICT)
        records = [existing]
        if existing.original_payment_id is not None:
            # Re-project the charge too: a crash may have stopped the first projection.
            charge = _fetch(cur, existing.original_payment_id)
            if charge is not None:
                records.append(charge)
        conn.rollback()
        return LedgerResult(outcome=Outcome.DUPLICATE, records=tuple(records))

    def _lock_original(self, cur: Any, payment: PaymentDetail) -> PaymentRecord:
        original = _fetch(cur, payment.original_payment_id or "", lock=True)
        if original is None:
            raise OriginalPaymentNotFound(
                "ORIGINAL_NOT_FOUND",
                "the refunded payment is not in the ledger (yet); parked for redrive",
            )
        return original

    @staticmethod
    def _check_refund(original: PaymentRecord, payment: PaymentDetail) -> None:
        if original.type != PaymentType.CHARGE.value:
            raise PaymentRejected("REFUND_OF_REFUND", "only a CHARGE can be refunded")
        if original.currency != payment.currency:
            raise PaymentRejected(
                "REFUND_CURRENCY_MISMATCH", "refund currency differs from the charge's"
            )
        if (original.merchant_id, original.customer_id) != (
            payment.merchant_id,
            payment.customer_id,
        ):
            raise PaymentRejected(
                "REFUND_PARTY_MISMATCH", "refund merchant/customer differ from the charge's"
            )
        left = original.amount_minor - original.refunded_minor
        if payment.amount_minor > left:
            raise PaymentRejected(
                "REFUND_EXCEEDS_CHARGE",
                f"refund of {payment.amount_minor} exceeds the {left} left to refund on the charge",
            )

    def _new_record(
        self, payment: PaymentDetail, payload_hash: str, now: datetime
    ) -> PaymentRecord:
        return PaymentRecord(
            payment_id=payment.payment_id,
            type=payment.type.value,
            original_payment_id=payment.original_payment_id,
            merchant_id=payment.merchant_id,
            customer_id=payment.customer_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            occurred_at=payment.occurred_at,
            processed_at=now,
            processed_region=self._region,
            payload_hash=payload_hash,
            refunded_minor=0,
        )
