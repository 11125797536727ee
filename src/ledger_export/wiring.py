"""Composition root: the ledger reader, built once per execution environment, on first use."""

from __future__ import annotations

from functools import lru_cache

from shared.adapters.ledger_export import MySQLLedgerRows
from shared.adapters.mysql import MySQLConnector
from shared.config import get_ledger_export_settings


@lru_cache(maxsize=1)
def get_rows() -> MySQLLedgerRows:
    settings = get_ledger_export_settings()
    return MySQLLedgerRows(MySQLConnector.from_settings(settings))
