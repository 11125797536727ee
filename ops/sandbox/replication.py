"""The two-region ledger of the sandbox and the tests: one MariaDB server per region, the writer's
changes copied to the other by MariaDB's own binlog replication (GTID, row-based), the replica
read-only as an Aurora Global Database secondary cluster is (the app user's writes fail with
MySQL error 1290). Harness only: nothing in src/ knows about it.

Each call is one thing a drill does to Aurora Global, done for real to the servers:

    status()                         Seconds_Behind_Master, received / executed GTID position,
                                     the writer's position, last error
    delay(n)                         MASTER_DELAY = n: changes appear on the replica n s late
    hold() / release()               stop / start applying (the IO thread keeps receiving)
    break_()                         stop replication altogether (release() starts it again)
    kill(region)                     the region's server dies (SIGKILL)
    fence(region)                    a live old writer made read-only
    promote(region)                  the replica stops replicating and becomes the writer
    rebuild(region)                  a lost or stale server comes back as a fresh replica of the
                                     writer, seeded from a consistent dump (as Aurora adds a
                                     secondary from the primary's storage, never by replaying
                                     what the old writer had on its own)
    restart(region)                  a killed server back on its own (stale) data
    demote(region)                   a fenced old writer that has everything becomes a replica
                                     of the new one, keeping its data (a switchover)
    snapshot(region, path)           a consistent dump (a final or stale cluster snapshot)

Servers are known by region; `writer` says which one takes writes, so roles swap by promotion.
`describe()` / `attach()` keep a topology across processes (the sandbox stores it in
state.json).
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from ops.sandbox.mariadb import MariaDBServer
from ops.sandbox.state import port_answers

REPLICATION_USER = "replicator"
LOOPBACK = "127.0.0.1"
# Replica threads retry a lost source every second (MariaDB's default is 60 s), so a rebuilt or
# restarted writer is picked up at once.
CONNECT_RETRY_SECONDS = 1
# Users the servers make for themselves: never copied by rebuild().
_SYSTEM_USERS = ("root", "mariadb.sys", "mysql", "PUBLIC", "")
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
_GTID_IN_DUMP = re.compile(r"^-- SET GLOBAL gtid_slave_pos='([^']*)';$", re.M)


class NotAReplica(RuntimeError):
    pass


def _gtid_seq(position: str) -> dict[str, int]:
    """'0-1-17,1-2-3' -> {'0': 17, '1': 3}: the sequence number reached in each domain."""
    found: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in position.split(","))):
        domain, _server, seq = part.split("-")
        found[domain] = int(seq)
    return found


@dataclass(frozen=True)
class ReplicaStatus:
    region: str
    source: str  # the region it replicates from
    io_state: str  # Slave_IO_Running: "Yes", "No" or "Connecting"
    sql_running: bool
    seconds_behind_master: int | None  # None while not applying (held, broken, disconnected)
    delay_seconds: int  # MASTER_DELAY
    remaining_delay: int | None  # seconds until the next held-back event is applied
    received_gtid: str  # what the replica has fetched (Gtid_IO_Pos)
    executed_gtid: str  # what it has applied (gtid_slave_pos)
    source_gtid: str | None  # the writer's gtid_binlog_pos; None when the writer is unreachable
    executed_log_file: str  # the source's binlog coordinates of the last applied event
    executed_log_pos: int
    last_error: str

    @property
    def replicating(self) -> bool:
        return self.io_state == "Yes" and self.sql_running

    @property
    def transactions_behind(self) -> int | None:
        """Transactions the writer has that the replica has not applied; None if unknown."""
        if self.source_gtid is None:
            return None
        source, executed = _gtid_seq(self.source_gtid), _gtid_seq(self.executed_gtid)
        return sum(max(0, seq - executed.get(domain, 0)) for domain, seq in source.items())

    @property
    def caught_up(self) -> bool:
        return self.transactions_behind == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "replicating": self.replicating,
            "transactions_behind": self.transactions_behind,
            "caught_up": self.caught_up,
        }


class Topology:
    def __init__(
        self, servers: dict[str, MariaDBServer], writer: str, replication_password: str
    ) -> None:
        if writer not in servers:
            raise ValueError(f"writer {writer!r} is not one of {sorted(servers)}")
        self.servers = servers
        self.writer = writer
        self._password = replication_password

    # -- making one -----------------------------------------------------------------------------

    @classmethod
    def start(cls, basedir: Path, regions: Sequence[str], *, writer: str | None = None) -> Topology:
        """A fresh server per region (under basedir/<region>), started together; the first region
        (or `writer`) takes writes and every other one replicates it."""
        writer = writer or regions[0]
        servers = {
            region: MariaDBServer(Path(basedir) / region, server_id=index + 1)
            for index, region in enumerate(regions)
        }
        topology = cls(servers, writer, secrets.token_urlsafe(24))
        first, *others = servers.values()
        for server in others:
            server.initialise(copy_of=first)  # one bootstrap, not one per region
        with ThreadPoolExecutor(len(servers)) as pool:
            started = [
                pool.submit(server.start, read_only=region != writer)
                for region, server in servers.items()
            ]
            errors = [f.exception() for f in started]
        if any(errors):
            topology.stop()
            raise next(e for e in errors if e is not None)
        try:
            topology._create_replication_user()
            for region in topology.replica_regions:
                topology._replicate(region, writer)
        except BaseException:
            topology.stop()
            raise
        return topology

    @classmethod
    def attach(cls, description: dict[str, Any]) -> Topology:
        """The topology `describe()` saved, for another process to act on (nothing started)."""
        servers = {
            region: MariaDBServer(Path(spec["basedir"]), port=spec["port"], server_id=spec["id"])
            for region, spec in description["servers"].items()
        }
        return cls(servers, description["writer"], description["replication_password"])

    def describe(self) -> dict[str, Any]:
        return {
            "writer": self.writer,
            "replication_password": self._password,
            "servers": {
                region: {"basedir": str(s.basedir), "port": s.port, "id": s.server_id}
                for region, s in self.servers.items()
            },
        }

    # -- who is who -----------------------------------------------------------------------------

    @property
    def primary(self) -> MariaDBServer:
        return self.servers[self.writer]

    @property
    def replica_regions(self) -> list[str]:
        return [region for region in self.servers if region != self.writer]

    @property
    def replica(self) -> MariaDBServer:
        return self.servers[self._replica_region(None)]

    def role(self, region: str) -> str:
        return "primary" if region == self.writer else "replica"

    def _replica_region(self, region: str | None) -> str:
        if region is not None:
            if region == self.writer:
                raise NotAReplica(f"{region} is the writer, not a replica")
            return region
        if len(self.replica_regions) != 1:
            raise ValueError(f"name the replica: {self.replica_regions}")
        return self.replica_regions[0]

    # -- lag and breakage on purpose ------------------------------------------------------------

    def delay(self, seconds: int, region: str | None = None) -> None:
        """Apply each change `seconds` after the writer committed it (MASTER_DELAY). Threads that
        were running run again (MariaDB changes it only with replication stopped)."""
        if seconds < 0:
            raise ValueError("a delay is >= 0 seconds")
        region = self._replica_region(region)
        before = self.status(region)
        with self._root(region) as cur:
            cur.execute("STOP SLAVE")
            cur.execute("CHANGE MASTER TO MASTER_DELAY = %s", (int(seconds),))
            if before.io_state != "No":
                cur.execute("START SLAVE IO_THREAD")
            if before.sql_running:
                cur.execute("START SLAVE SQL_THREAD")

    def hold(self, region: str | None = None) -> None:
        """Stop applying: changes still arrive (relay log) but none becomes visible."""
        with self._root(self._replica_region(region)) as cur:
            cur.execute("STOP SLAVE SQL_THREAD")

    def release(self, region: str | None = None) -> None:
        """Start whatever replication thread is stopped (after hold() or break_())."""
        with self._root(self._replica_region(region)) as cur:
            cur.execute("START SLAVE")

    def break_(self, region: str | None = None) -> None:
        """Stop replication altogether: nothing received, nothing applied."""
        with self._root(self._replica_region(region)) as cur:
            cur.execute("STOP SLAVE")

    def status(self, region: str | None = None) -> ReplicaStatus:
        region = self._replica_region(region)
        with self._root(region, dict_rows=True) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
            if not row:
                raise NotAReplica(f"{region} does not replicate from anyone")
            cur.execute("SELECT @@global.gtid_slave_pos AS executed")
            executed = str(cur.fetchone()["executed"])
        behind = row["Seconds_Behind_Master"]
        remaining = row["SQL_Remaining_Delay"]
        return ReplicaStatus(
            region=region,
            source=self._region_on_port(int(row["Master_Port"])),
            io_state=str(row["Slave_IO_Running"]),
            sql_running=row["Slave_SQL_Running"] == "Yes",
            seconds_behind_master=None if behind is None else int(behind),
            delay_seconds=int(row["SQL_Delay"]),
            remaining_delay=None if remaining is None else int(remaining),
            received_gtid=str(row["Gtid_IO_Pos"]),
            executed_gtid=executed,
            source_gtid=self.writer_gtid(),
            executed_log_file=str(row["Relay_Master_Log_File"]),
            executed_log_pos=int(row["Exec_Master_Log_Pos"]),
            last_error=str(row["Last_IO_Error"] or row["Last_SQL_Error"] or ""),
        )

    def writer_gtid(self) -> str | None:
        """The writer's binlog position (GTID), or None when it does not answer."""
        try:
            with self._root(self.writer) as cur:
                cur.execute("SELECT @@global.gtid_binlog_pos")
                return str(cur.fetchone()[0])
        except pymysql.err.OperationalError:
            return None

    def wait_caught_up(self, region: str | None = None, timeout: float = 30.0) -> ReplicaStatus:
        """Until the replica has applied everything the writer has (not a lag figure: a state)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(region)
            if status.caught_up:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica not caught up after {timeout:.0f}s: {status}")
            time.sleep(0.05)

    # -- failover -------------------------------------------------------------------------------

    def kill(self, region: str) -> None:
        self.servers[region].kill()

    def fence(self, region: str) -> None:
        """Make a still-running old writer read-only (Aurora: the demoted primary)."""
        self.servers[region].set_read_only(True)

    def promote(self, region: str) -> None:
        """The replica forgets its source and takes writes (Aurora: detach and promote). What the
        old writer committed and never sent is lost, as in an unplanned failover; the old writer,
        if it still runs, keeps accepting writes until fence()d."""
        if region == self.writer:
            return
        with self._root(region) as cur:
            cur.execute("STOP SLAVE")
            cur.execute("RESET SLAVE ALL")
            cur.execute("SET GLOBAL read_only = OFF")
        self.writer = region

    def rebuild(self, region: str, timeout: float = 30.0) -> MariaDBServer:
        """Replace `region`'s server by a fresh replica of the writer: stop what runs there, wipe
        its data, start it read-only on the same port (when free), copy the writer's users and
        databases from one consistent snapshot, and replicate from that snapshot's position."""
        if region == self.writer:
            raise ValueError(f"{region} is the writer: promote another region first")
        old = self.servers[region]
        old.stop()
        shutil.rmtree(old.basedir, ignore_errors=True)
        port = old.port if not port_answers(old.port) else None
        fresh = MariaDBServer(old.basedir, port=port, server_id=old.server_id)
        self.servers[region] = fresh.start(timeout, read_only=True)
        source = self.primary
        dump, position = self._snapshot(source, self.writer)
        # The copy is the writer's history, not this server's: kept out of its binlog.
        subprocess.run(
            [_client("mariadb"), "--no-defaults", f"--socket={fresh.socket}", "--user=root",
             "--init-command=SET SESSION sql_log_bin = 0"],
            input=dump, check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        with self._root(region) as cur:
            cur.execute("SET SESSION sql_log_bin = 0")
            for statement in self._user_statements():  # grants name the tables: data first
                cur.execute(statement)
            cur.execute("RESET MASTER")
            # The binlog starts where the snapshot is, so a server that later replicates from
            # this one (after a promotion) finds its position in it.
            cur.execute("SET GLOBAL gtid_binlog_state = %s", (position,))
            cur.execute("SET GLOBAL gtid_slave_pos = %s", (position,))
        self._replicate(region, self.writer)
        return fresh

    def restart(self, region: str, timeout: float = 30.0, *, read_only: bool) -> MariaDBServer:
        """A killed server started again on its own data (InnoDB recovers what it committed), on
        the same port: a region that comes back, with whatever it had, stale or not."""
        old = self.servers[region]
        fresh = MariaDBServer(old.basedir, port=old.port, server_id=old.server_id)
        self.servers[region] = fresh.start(timeout, read_only=read_only)
        return fresh

    def demote(self, region: str) -> None:
        """A fenced old writer that has every commit of the new writer (a switchover) becomes its
        replica, keeping its data: it resumes after the last transaction in its own binlog,
        which holds everything it executed (log_slave_updates)."""
        if region == self.writer:
            raise ValueError(f"{region} is the writer: promote another region first")
        with self._root(region) as cur:
            cur.execute("SET GLOBAL read_only = ON")
            cur.execute("STOP SLAVE")
            cur.execute("RESET SLAVE ALL")
            cur.execute("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos")
        self._replicate(region, self.writer)

    def snapshot(self, region: str, path: Path, timeout: float = 120.0) -> Path:
        """A consistent dump of `region`'s databases into `path` (a final or stale snapshot)."""
        dump, _position = self._snapshot(self.servers[region], region)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
        path.write_bytes(dump)
        return path

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    # -- internals ------------------------------------------------------------------------------

    @contextmanager
    def _root(self, region: str, *, dict_rows: bool = False) -> Iterator[Any]:
        cursor_class = pymysql.cursors.DictCursor if dict_rows else pymysql.cursors.Cursor
        with self.servers[region].root() as conn, conn.cursor(cursor_class) as cur:
            yield cur

    def _region_on_port(self, port: int) -> str:
        return next((r for r, s in self.servers.items() if s.port == port), f"127.0.0.1:{port}")

    def _create_replication_user(self) -> None:
        """On the writer, binlogged: every replica gets the same user, so after a promotion the
        others can replicate from the new writer with the same credentials."""
        with self._root(self.writer) as cur:
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                (REPLICATION_USER, LOOPBACK, self._password),
            )
            cur.execute("GRANT REPLICATION SLAVE ON *.* TO %s@%s", (REPLICATION_USER, LOOPBACK))

    def _replicate(self, region: str, source: str) -> None:
        with self._root(region) as cur:
            cur.execute("SET GLOBAL read_only = ON")
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s,"
                " MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = %s",
                (
                    LOOPBACK,
                    self.servers[source].port,
                    REPLICATION_USER,
                    self._password,
                    CONNECT_RETRY_SECONDS,
                ),
            )
            cur.execute("START SLAVE")

    def _user_statements(self) -> list[str]:
        """CREATE USER + GRANTs for the writer's own users (app user, replication user)."""
        statements: list[str] = []
        with self._root(self.writer) as cur:
            cur.execute("SELECT user, host FROM mysql.user")
            users = [(u, h) for u, h in cur.fetchall() if u not in _SYSTEM_USERS]
            for user, host in users:
                cur.execute("SHOW CREATE USER %s@%s", (user, host))
                create = str(cur.fetchone()[0])
                statements.append(create.replace("CREATE USER", "CREATE USER IF NOT EXISTS", 1))
                cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
                statements.extend(str(grant) for (grant,) in cur.fetchall())
        return statements

    def _snapshot(self, source: MariaDBServer, region: str) -> tuple[bytes, str]:
        """A consistent dump of the source's databases and the GTID position it stands at."""
        with self._root(region) as cur:
            cur.execute("SHOW DATABASES")
            databases = [d for (d,) in cur.fetchall() if d not in _SYSTEM_SCHEMAS]
        if not databases:
            with self._root(region) as cur:
                cur.execute("SELECT @@global.gtid_binlog_pos")
                return b"", str(cur.fetchone()[0])
        dump = subprocess.run(
            [_client("mariadb-dump"), "--no-defaults", f"--socket={source.socket}",
             "--user=root", "--single-transaction", "--gtid", "--master-data=2",
             "--routines", "--events", "--triggers", "--databases", *databases],
            check=True, capture_output=True, timeout=120,
        ).stdout  # fmt: skip
        match = _GTID_IN_DUMP.search(dump.decode(errors="replace"))
        if match is None:
            raise RuntimeError("mariadb-dump gave no GTID position (is the writer's binlog on?)")
        return dump, match.group(1)


def _client(name: str) -> str:
    found = shutil.which(name) or shutil.which(name.replace("mariadb", "mysql"))
    if found is None:
        raise RuntimeError(f"{name} not found (it comes with mariadb-server's client package)")
    return found
