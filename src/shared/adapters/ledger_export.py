"""Ledger rows for reconciliation: read only, on a fresh connection, one page at a time."""

from __future__ import annotations

from datetime import datetime

import pymysql

from shared.adapters.ledger import payments_since
from shared.adapters.mysql import MySQLConnector
from shared.errors import LedgerUnavailable
from shared.records import PaymentRecord


class MySQLLedgerRows:
    def __init__(self, connector: MySQLConnector) -> None:
        """``connector`` reaches the ledger as the application user (SELECT is all it needs)."""
        self._connector = connector

    def page(self, *, since: datetime, after: str, limit: int) -> list[PaymentRecord]:
        conn = self._connector.connect()
        try:
            with conn.cursor() as cur:
                return payments_since(cur, since=since, after=after, limit=limit)
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            raise LedgerUnavailable(f"ledger export failed (MySQL error {code})") from exc
        finally:
            try:
                conn.close()
            except pymysql.err.Error:
                pass  # already closed by the server
