"""The ledger as the health check sees it: reachable as the application user, and writable or not.

It connects through the same MySQLConnector as the processor (host, TLS, the application user's
secret, credentials refetched after an access-denied), but on a fresh connection each time and
within the check's own timeout: a probe must prove that a new connection works, since rotation
and failover break new connections first, and must not keep one open between probes.
"""

from __future__ import annotations

import pymysql

from shared.adapters.mysql import MySQLConnector
from shared.errors import LedgerUnavailable

# SELECT 1 proves a working session. Aurora MySQL reports a reader (or a global secondary) with
# innodb_read_only = 1; read_only = 1 is how a MySQL/MariaDB server (the sandbox) is fenced.
_PROBE = "SELECT 1, @@global.read_only, @@global.innodb_read_only"


class MySQLLedgerProbe:
    def __init__(self, connector: MySQLConnector, *, timeout: float) -> None:
        self._connector = connector
        self._timeout = timeout

    def is_writable(self) -> bool:
        """True when the server accepts writes, False when it answers read-only.

        Raises LedgerUnavailable when it cannot connect or does not answer within the timeout."""
        conn = self._connector.connect(timeout=self._timeout)
        try:
            with conn.cursor() as cur:
                cur.execute(_PROBE)
                row = cur.fetchone()
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            raise LedgerUnavailable(f"ledger probe failed (MySQL error {code})") from exc
        finally:
            try:
                conn.close()
            except pymysql.err.Error:
                pass  # already closed by the server
        if row is None or row[0] != 1:
            raise LedgerUnavailable("ledger probe returned no row")
        return not int(row[1]) and not int(row[2])
