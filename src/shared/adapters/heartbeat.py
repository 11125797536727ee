"""The replication heartbeat row (src/shared/migrations/0004_replication_heartbeat.sql):
written on the writer, looked for on a reader. Knows SQL and MySQL's error codes, not what the
figures mean.

Every time is the database's own clock (UTC_TIMESTAMP(6) evaluated on the writer, replicated as a
value; ages computed on the reader), so a function's clock never enters an age. Each call opens a
fresh connection through MySQLConnector (the application user, TLS, time bounds) and closes it;
`watch()` keeps one open, in autocommit, for a poll loop (a snapshot would never see the row).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
from pymysql.connections import Connection

from shared.adapters.mysql import MySQLConnector, set_io_timeout, time_left
from shared.errors import LedgerReadOnly, LedgerUnavailable

ER_OPTION_PREVENTS_STATEMENT = 1290  # read-only: a reader, a secondary cluster, fenced

_BEAT = (
    "INSERT INTO replication_heartbeat (origin_region, token, written_at) "
    "VALUES (%s, %s, UTC_TIMESTAMP(6)) "
    "ON DUPLICATE KEY UPDATE token = %s, written_at = UTC_TIMESTAMP(6)"
)
_HAS = "SELECT 1 FROM replication_heartbeat WHERE origin_region = %s AND token = %s"
# Seconds between the newest heartbeat (of one origin, or of any) and this server's clock now.
_AGE = (
    "SELECT TIMESTAMPDIFF(MICROSECOND, MAX(written_at), UTC_TIMESTAMP(6)) / 1000000 "
    "FROM replication_heartbeat"
)


def _code(exc: pymysql.err.MySQLError) -> Any:
    return exc.args[0] if exc.args else None


def _close(conn: Connection[Any]) -> None:
    try:
        conn.close()
    except pymysql.err.Error:
        pass  # already closed by the server


def _age(cur: Any, origin_region: str | None) -> float | None:
    if origin_region is None:
        cur.execute(_AGE)
    else:
        cur.execute(_AGE + " WHERE origin_region = %s", (origin_region,))
    row = cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])


class HeartbeatWatch:
    """One open reader connection, asked again and again (autocommit: each read is fresh)."""

    def __init__(self, conn: Connection[Any], io_timeout: float) -> None:
        self._conn = conn
        self._io_timeout = io_timeout

    def _bound(self) -> None:
        # Each read ends by the invocation's deadline, however long the poll loop has run.
        set_io_timeout(self._conn, time_left(self._io_timeout))

    def has(self, origin_region: str, token: str) -> bool:
        try:
            self._bound()
            with self._conn.cursor() as cur:
                cur.execute(_HAS, (origin_region, token))
                return cur.fetchone() is not None
        except pymysql.err.MySQLError as exc:
            raise LedgerUnavailable(f"heartbeat read failed (MySQL error {_code(exc)})") from exc

    def age(self, origin_region: str | None = None) -> float | None:
        try:
            self._bound()
            with self._conn.cursor() as cur:
                return _age(cur, origin_region)
        except pymysql.err.MySQLError as exc:
            raise LedgerUnavailable(f"heartbeat read failed (MySQL error {_code(exc)})") from exc


class MySQLHeartbeat:
    def __init__(self, connector: MySQLConnector, *, timeout: float | None = None) -> None:
        """``connector`` names the server: the writer for beat(), a reader for the rest."""
        self._connector = connector
        self._timeout = timeout

    def beat(self, origin_region: str) -> str:
        """Upsert this region's row with a new token; returns the token once COMMIT answered.
        LedgerReadOnly when the server is read-only, LedgerUnavailable when it cannot."""
        token = secrets.token_hex(16)
        conn = self._connector.connect(timeout=self._timeout)
        try:
            with conn.cursor() as cur:
                cur.execute(_BEAT, (origin_region, token, token))
            conn.commit()
        except pymysql.err.MySQLError as exc:
            if _code(exc) == ER_OPTION_PREVENTS_STATEMENT:
                raise LedgerReadOnly() from exc
            raise LedgerUnavailable(f"heartbeat write failed (MySQL error {_code(exc)})") from exc
        finally:
            _close(conn)
        return token

    def heartbeat_age(self, origin_region: str | None = None) -> float | None:
        """Seconds since the newest heartbeat this server holds (of `origin_region`, or of any);
        None when it holds none."""
        with self.watch() as watch:
            return watch.age(origin_region)

    @contextmanager
    def watch(self) -> Iterator[HeartbeatWatch]:
        conn = self._connector.connect(timeout=self._timeout)
        try:
            conn.autocommit(True)
            yield HeartbeatWatch(conn, self._timeout or self._connector.io_timeout)
        except pymysql.err.MySQLError as exc:
            raise LedgerUnavailable(f"heartbeat read failed (MySQL error {_code(exc)})") from exc
        finally:
            _close(conn)
