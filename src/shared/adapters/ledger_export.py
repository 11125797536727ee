"""Ledger rows for reconciliation: read only, on a fresh connection, one page at a time."""

from __future__ import annotations

from datetime import datetime

import pymysql

from payment_processor.ports import PaymentRecord
from shared.adapters.ledger import _COLUMNS, MySQLLedger, _record
from shared.errors import LedgerUnavailable


class MySQLLedgerRows:
    def __init__(self, ledger: MySQLLedger) -> None:
        """``ledger`` supplies the connection (the application user; SELECT is all it needs)."""
        self._ledger = ledger

    def page(self, *, since: datetime, after: str, limit: int) -> list[PaymentRecord]:
        # Keyset paging on the primary key; processed_at is stored as naive UTC.
        conn = self._ledger._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT {_COLUMNS} FROM payments"
                    " WHERE processed_at >= %s AND payment_id > %s"
                    " ORDER BY payment_id LIMIT %s",
                    (since.replace(tzinfo=None), after, limit),
                )
                return [_record(row) for row in cur.fetchall()]
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            raise LedgerUnavailable(f"ledger export failed (MySQL error {code})") from exc
        finally:
            try:
                conn.close()
            except pymysql.err.Error:
                pass  # already closed by the server
