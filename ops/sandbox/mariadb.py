"""A throwaway MariaDB server on loopback, standing in for Aurora MySQL 3 in the sandbox and the
tests. Started without systemd, data in a folder of ours, stopped by its PID.

Every server writes a ROW binlog with GTIDs and keeps replicated changes in it
(log_slave_updates), so any server can be the source or the replica of another and the two can
swap roles (ops/sandbox/replication.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql

from ops.sandbox.ensure_mariadb import server_binary
from ops.sandbox.state import command_line, free_port

# A small redo log (the default is 96 MB): a fresh data folder is ~25 MB, quick to create and to
# copy for a second server, and plenty for test and sandbox volumes.
REDO_LOG_SIZE = "--innodb-log-file-size=16M"


class MariaDBServer:
    def __init__(self, basedir: Path, port: int | None = None, server_id: int = 1) -> None:
        self.basedir = Path(basedir)
        self.server_id = server_id
        self.datadir = self.basedir / "data"
        self.socket = self.basedir / "mysqld.sock"
        self.pid_file = self.basedir / "mysqld.pid"
        self.log_file = self.basedir / "mysqld.log"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def initialise(self, *, copy_of: MariaDBServer | None = None) -> None:
        """A fresh data folder (system tables, root on the socket), unless one is there. A copy of
        another server's untouched folder is the same thing and skips the ~1-4 s bootstrap."""
        if (self.datadir / "mysql").exists():
            return
        self.basedir.mkdir(parents=True, exist_ok=True)
        if copy_of is not None:
            copy_of.initialise()
            shutil.copytree(copy_of.datadir, self.datadir)
            return
        install_db = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        subprocess.run(
            [
                install_db,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                REDO_LOG_SIZE,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, timeout: float = 30.0, *, read_only: bool = False) -> MariaDBServer:
        """Start the server (a fresh data folder is initialised first). `read_only`: from the
        first moment, as a replica must be (no window in which the app user could write)."""
        binary = server_binary()
        if binary is None:
            raise RuntimeError(
                "MariaDB is not installed: run `make mariadb` (or "
                "`apt-get install -y mariadb-server`)"
            )
        self.initialise()
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--no-defaults",
                    "--user=root",
                    f"--datadir={self.datadir}",
                    f"--socket={self.socket}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--pid-file={self.pid_file}",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=64M",
                    REDO_LOG_SIZE,
                    "--innodb-flush-log-at-trx-commit=1",
                    "--max-connections=300",
                    # Liveness probes (connect, close) must never get 127.0.0.1 blocked.
                    "--max-connect-errors=1000000",
                    "--log-bin=mysql-bin",
                    f"--server-id={self.server_id}",
                    "--binlog-format=ROW",
                    "--log-slave-updates",
                    "--relay-log=relay-bin",  # not named after the host name
                    f"--read-only={'ON' if read_only else 'OFF'}",
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self.log_file}")
            try:
                self._socket_only_root()
                return self
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mariadbd did not become ready in {timeout}s; see {self.log_file}")

    def _socket_only_root(self) -> None:
        """mariadb-install-db also makes password-less root users reachable over TCP; keep only
        root@localhost (the unix socket), so no local process can log in as root by port."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")  # this server's own affair: not replicated
            cur.execute("SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'")
            for (host,) in cur.fetchall():
                cur.execute("DROP USER %s@%s", ("root", host))

    def root(self, database: str | None = None) -> Any:
        """An administrative connection over the unix socket (never used by the functions)."""
        return pymysql.connect(
            unix_socket=str(self.socket), user="root", database=database, autocommit=True
        )

    def set_read_only(self, on: bool) -> None:
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")

    def is_ours(self, pid: int) -> bool:
        """`pid` is a mariadbd on this data folder (a pid file can outlive its process)."""
        return f"--datadir={self.datadir}" in (command_line(pid) or [])

    def stop(self, timeout: float = 20.0) -> None:
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the server dies as a crashed host would, nothing flushed or closed cleanly."""
        self._signal(signal.SIGKILL, 5.0)

    def _signal(self, signum: int, timeout: float) -> None:
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return
        pid = self.pid
        if pid is None or not self.is_ours(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + timeout
        while command_line(pid) is not None:  # a zombie counts as gone
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
