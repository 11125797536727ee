"""A throwaway MariaDB server on loopback, standing in for Aurora MySQL 3 in the sandbox and the
tests. Started without systemd, data in a folder of ours, stopped by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql

from ops.sandbox.ensure_mariadb import server_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MariaDBServer:
    def __init__(self, basedir: Path, port: int | None = None) -> None:
        self.basedir = Path(basedir)
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

    def start(self, timeout: float = 30.0) -> MariaDBServer:
        binary = server_binary()
        if binary is None:
            raise RuntimeError(
                "MariaDB is not installed: run `make mariadb` (or "
                "`apt-get install -y mariadb-server`)"
            )
        self.basedir.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "mysql").exists():
            install_db = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
            subprocess.run(
                [
                    install_db,
                    "--no-defaults",
                    "--user=root",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
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
                    "--innodb-flush-log-at-trx-commit=1",
                    "--max-connections=300",
                    "--log-bin=mysql-bin",
                    "--server-id=1",
                    "--binlog-format=ROW",
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

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid if self.process is None else self.process.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self.process = None
