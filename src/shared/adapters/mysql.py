"""Connections to the ledger's database (Aurora MySQL 3; MariaDB in tests and the sandbox) as the
application user: the one door every component uses to reach it (the payment ledger, the health
probe, the ledger export, the replication monitor's heartbeat; the schema migration as the master
user).

- TLS is verified (certificate chain and host name) against the packaged RDS CA bundle; a
  missing bundle is a clear LedgerUnavailable, never a silent unverified connection.
- Credentials come from the secret (Powertools, cached); "access denied" (1045) means the
  password changed (rotation, failover): the secret is fetched again, bypassing the cache, and
  the connect tried once more.
- Every wait is bounded: the TCP connect, the handshake and each socket read or write take at
  most the least of the connector's own timeouts, the caller's ``timeout`` and what the active
  invocation Deadline (shared.deadline) has left. Without time left it raises DeadlineExceeded
  instead of starting.
"""

from __future__ import annotations

import ssl
from typing import Any

import pymysql
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pymysql.connections import Connection

from shared import deadline
from shared.adapters.secrets import SecretCredentials
from shared.config import LedgerSettings
from shared.errors import DeadlineExceeded, LedgerUnavailable

ER_ACCESS_DENIED = 1045
# Below this a socket operation cannot do anything useful: give up before sending.
MIN_IO_SECONDS = 0.05


def time_left(*limits: float | None) -> float:
    """The least of ``limits`` and what the active Deadline has left (seconds). Raises
    DeadlineExceeded when that is too little for one more round trip."""
    bounds = [limit for limit in limits if limit is not None]
    active = deadline.current()
    if active is not None:
        bounds.append(active.remaining())
    if not bounds:
        raise ValueError("time_left needs a limit or an active Deadline")
    seconds = min(bounds)
    if seconds < MIN_IO_SECONDS:
        raise DeadlineExceeded("not enough time left for the ledger database")
    return seconds


def set_io_timeout(conn: Connection[Any], seconds: float) -> None:
    """Bound the next socket reads and writes of ``conn`` to ``seconds`` each.

    pymysql sets its read/write timeouts only at connect, but reads them from these attributes
    before every packet (connections.py ``_read_packet``/``_write_bytes``, pymysql 1.1-1.2);
    there is no public setter. tests/unit/test_mysql_connector.py pins the attributes, and the
    frozen-database integration tests prove a statement really stops in time."""
    conn._read_timeout = seconds  # type: ignore[attr-defined]
    conn._write_timeout = seconds  # type: ignore[attr-defined]


class MySQLConnector:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        database: str | None,
        credentials: SecretCredentials,
        tls: bool = True,
        tls_ca_file: str | None = None,
        connect_timeout: float = 3.0,
        io_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.database = database
        self._credentials = credentials
        self._tls = tls
        self._tls_ca_file = tls_ca_file
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout

    @classmethod
    def from_settings(
        cls, settings: LedgerSettings, *, provider: Any = None, **timeouts: float
    ) -> MySQLConnector:
        """The database the settings name; ``timeouts`` are connect_timeout and io_timeout."""
        return cls(
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
            credentials=SecretCredentials(
                settings.db_secret_id, max_age=settings.secret_max_age_seconds, provider=provider
            ),
            tls=settings.db_tls,
            tls_ca_file=settings.db_tls_ca_file,
            **timeouts,
        )

    def at(self, host: str, port: int | None = None) -> MySQLConnector:
        """The same user, TLS and timeouts on another server of the ledger (a cluster's reader
        endpoint, the peer region's reader); the credentials and their cache are shared."""
        return MySQLConnector(
            host=host,
            port=self.port if port is None else port,
            database=self.database,
            credentials=self._credentials,
            tls=self._tls,
            tls_ca_file=self._tls_ca_file,
            connect_timeout=self.connect_timeout,
            io_timeout=self.io_timeout,
        )

    def connect(
        self, *, timeout: float | None = None, init_command: str | None = None
    ) -> Connection[Any]:
        """A new connection (autocommit off, utf8mb4) as the secret's user (the application
        user; the master user for the schema migration, whose database may not exist yet:
        ``database`` None); ``init_command`` runs first on it. Raises LedgerUnavailable, or
        DeadlineExceeded."""
        ssl_context = self.ssl_context()
        for last_try in (False, True):
            io_timeout = time_left(self.io_timeout, timeout)  # nothing starts without time
            creds = self._read_credentials()
            try:
                return pymysql.connect(
                    host=self.host,
                    port=self.port,
                    user=creds.username,
                    password=creds.password,
                    database=self.database,
                    autocommit=False,
                    charset="utf8mb4",
                    init_command=init_command,
                    connect_timeout=time_left(self.connect_timeout, timeout),
                    # The handshake reads with this too: a server that accepts and never
                    # answers is given up on within the same bound.
                    read_timeout=io_timeout,
                    write_timeout=io_timeout,
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

    def invalidate_credentials(self) -> None:
        """The next connect fetches the secret again (a session was refused access)."""
        self._credentials.invalidate()

    def _read_credentials(self) -> Any:
        try:
            return self._credentials.get()
        except DeadlineExceeded:
            raise
        except GetParameterError as exc:
            # Powertools wraps whatever the SDK raised (the deadline hook's refusal too).
            if isinstance(exc.__context__, DeadlineExceeded):
                raise exc.__context__ from None
            raise LedgerUnavailable("cannot read the ledger's database secret") from exc
        except (TransformParameterError, KeyError, TypeError, ValueError) as exc:
            raise LedgerUnavailable("the ledger's database secret is malformed") from exc

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verified TLS (certificate chain and host name) unless turned off for a local server."""
        if not self._tls:
            return None
        try:
            return ssl.create_default_context(cafile=self._tls_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise LedgerUnavailable(
                f"CA bundle {self._tls_ca_file!r} unusable: `make build` packages it"
            ) from exc
