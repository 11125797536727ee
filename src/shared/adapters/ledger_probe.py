"""The ledger as the health check sees it: reachable as the application user, and writable or not.

It connects exactly as the processor does (MySQLLedger's connection: host, TLS, the application
user's secret, credentials refetched after an access-denied), but on a fresh connection each time
and with short timeouts: a probe must prove that a new connection works, since rotation and
failover break new connections first, and must not keep one open between probes.
"""

from __future__ import annotations

import pymysql

from shared.adapters.ledger import MySQLLedger
from shared.errors import LedgerUnavailable

# SELECT 1 proves a working session. Aurora MySQL reports a reader (or a global secondary) with
# innodb_read_only = 1; read_only = 1 is how a MySQL/MariaDB server (the sandbox) is fenced.
_PROBE = "SELECT 1, @@global.read_only, @@global.innodb_read_only"


class MySQLLedgerProbe:
    def __init__(self, ledger: MySQLLedger) -> None:
        """``ledger`` supplies the connection (build it with short timeouts and one attempt)."""
        self._ledger = ledger

    def is_writable(self) -> bool:
        """True when the server accepts writes, False when it answers read-only.

        Raises LedgerUnavailable when it cannot connect or does not answer."""
        # MySQLLedger's own connect, so the probe cannot drift from what the processor opens.
        conn = self._ledger._connect()
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
