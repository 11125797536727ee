"""The ledger's schema, versioned: the one definition of what the ledger's tables are and who
may touch them.

`src/shared/migrations/NNNN_name.sql` are applied in order and recorded in `schema_migrations`
with a checksum of their file; the least-privilege application user gets exactly APP_GRANTS.
SchemaMigrationFunction runs this against Aurora as the master user, through MySQLConnector
(MySQLLedgerSchema below); the sandbox and the tests' MariaDB fixtures run the same functions
(`apply`, `ensure_app_user`) on a root connection. The SQL files are packaged with the functions
(CodeUri: src/), so what is deployed is what the tests ran.

- Progress is recorded per statement, because MySQL commits DDL by itself: a migration stopped
  half-way (a lock it could not get, the deadline, a lost connection) goes on from the statement
  that failed when run again, instead of repeating ones that took effect.
- One migration at a time, whoever runs it (two regions, a re-run while the first still runs):
  a named lock (GET_LOCK) on the server.
- A DDL waits at most DDL_LOCK_WAIT_SECONDS for its table's metadata lock, then fails (run it
  again later). An ALTER queued behind a long transaction would otherwise make every payment
  write queue behind the ALTER, for as long as MySQL's default lock_wait_timeout: a year.
- An applied migration whose file changed since is refused: released migrations are never
  edited, a new one is added instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)

from shared.adapters.mysql import MySQLConnector, set_io_timeout, time_left
from shared.adapters.secrets import DbCredentials, SecretCredentials
from shared.errors import DeadlineExceeded, LedgerUnavailable, SchemaMigrationError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# The functions may add payments and entries and move a charge's refunded total: nothing else.
APP_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON `{db}`.`payments` TO '{user}'@'{host}'",
    "GRANT SELECT, INSERT ON `{db}`.`ledger_entries` TO '{user}'@'{host}'",
    # The replication monitor writes its heartbeat row (migration 0004) as the same user.
    "GRANT SELECT, INSERT, UPDATE ON `{db}`.`replication_heartbeat` TO '{user}'@'{host}'",
)
# The alternating-users rotation (MySQLMultiUser) flips the application secret between <user>
# and <user>_clone, copying the grants of the one it leaves.
ROTATION_CLONE_SUFFIX = "_clone"

LOCK_NAME = "dr-payment-ledger-schema"
LOCK_TIMEOUT_SECONDS = 10
DDL_LOCK_WAIT_SECONDS = 5
# Kept back from a statement's wait: time to stop it on the server if the wait runs out.
KILL_RESERVE_SECONDS = 5.0

ER_LOCK_WAIT_TIMEOUT = 1205
ER_OPTION_PREVENTS_STATEMENT = 1290  # --read-only: not the writer
ER_READ_ONLY_MODE = 1836
CR_SERVER_LOST = 2013

_DATABASE = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # quoted with backticks below
_USER = re.compile(r"^[A-Za-z0-9_]{1,26}$")  # + "_clone": within MySQL 8's 32 characters

_CREATE_RECORDS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL PRIMARY KEY,"
    " name VARCHAR(200) NOT NULL,"
    " checksum CHAR(64) NOT NULL,"
    " statements_done INT NOT NULL DEFAULT 0,"
    " applied_at DATETIME(6) NULL)"  # NULL while in progress
)

Statement = Callable[[Any], None]  # called with the connection before each statement


class StatementInterrupted(SchemaMigrationError):
    """The connection was lost while a migration statement ran (a socket timeout at the
    deadline, a network failure): the server may still be running it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        return statements(self.sql)


def migrations(directory: Path = MIGRATIONS) -> list[Migration]:
    """Every migration file, in version order. A misnamed file or a version used twice (two
    branches that each added the next number) is refused: the order would be a guess."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name not NNNN_name.sql: {path.name}")
        version = int(match.group(1))
        if version in found:
            raise ValueError(
                f"migration version {version} twice: {found[version].name}, {path.name}"
            )
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


def statements(sql: str) -> list[str]:
    # Our migrations hold plain DDL/DML (no procedures), so ';' at a line end ends a statement.
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    )
    return [
        part.strip() for part in re.split(r";\s*$", without_comments, flags=re.M) if part.strip()
    ]


@dataclass(frozen=True)
class Record:
    """A row of schema_migrations."""

    version: int
    name: str
    checksum: str
    statements_done: int
    complete: bool


@dataclass(frozen=True)
class SchemaState:
    database: str
    known: tuple[Migration, ...]
    records: dict[int, Record]

    @property
    def version(self) -> int:
        """The highest version applied completely (0: none)."""
        return max((v for v, record in self.records.items() if record.complete), default=0)

    @property
    def pending(self) -> list[Migration]:
        return [
            m
            for m in self.known
            if m.version not in self.records or not self.records[m.version].complete
        ]

    @property
    def unknown(self) -> list[str]:
        """Applied by a newer release than this one (its code must then not be rolled back)."""
        ours = {m.version for m in self.known}
        return [r.name for v, r in sorted(self.records.items()) if v not in ours]

    @property
    def edited(self) -> list[str]:
        """Recorded (complete or begun) with another checksum than their file has now."""
        return [
            m.name
            for m in self.known
            if m.version in self.records and self.records[m.version].checksum != m.checksum
        ]


def read_state(conn: Any, database: str, known: Sequence[Migration] | None = None) -> SchemaState:
    """What is applied; creates nothing (a server without the database is at version 0)."""
    known = tuple(migrations() if known is None else known)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = 'schema_migrations'",
            (database,),
        )
        if cur.fetchone()[0] == 0:
            return SchemaState(database, known, {})
        cur.execute(
            f"SELECT version, name, checksum, statements_done, applied_at IS NOT NULL "
            f"FROM `{database}`.schema_migrations"
        )
        records = {
            int(row[0]): Record(int(row[0]), row[1], row[2], int(row[3]), bool(row[4]))
            for row in cur.fetchall()
        }
    return SchemaState(database, known, records)


def apply(
    conn: Any,
    database: str,
    *,
    up_to: int | None = None,
    known: Sequence[Migration] | None = None,
    before_statement: Statement | None = None,
    lock_timeout: int = LOCK_TIMEOUT_SECONDS,
    ddl_lock_wait: int = DDL_LOCK_WAIT_SECONDS,
) -> list[str]:
    """Create the database if needed and apply the pending migrations in order (those numbered up
    to ``up_to`` when given); returns the names of those completed now. Raises
    SchemaMigrationError (with the migration, the statement and MySQL's error code) and leaves
    the statements that took effect recorded. ``before_statement`` runs before each statement
    (SchemaMigrationFunction bounds the next socket wait by its deadline there)."""
    if not _DATABASE.match(database):
        raise ValueError(f"database name {database!r} is not [A-Za-z0-9_]{{1,64}}")
    before = before_statement or (lambda _conn: None)
    known = tuple(migrations() if known is None else known)
    with conn.cursor() as cur:
        before(conn)
        cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, lock_timeout))
        if cur.fetchone()[0] != 1:
            raise SchemaMigrationError(
                f"another schema migration holds the lock {LOCK_NAME!r} on this server (waited "
                f"{lock_timeout} s): let it finish, then run this again"
            )
        try:
            # whole seconds, minimum 1, on MySQL 8 / Aurora MySQL 3 and MariaDB alike
            cur.execute(
                "SET SESSION lock_wait_timeout = %s, SESSION innodb_lock_wait_timeout = %s",
                (ddl_lock_wait, ddl_lock_wait),
            )
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            cur.execute(f"USE `{database}`")
            cur.execute(_CREATE_RECORDS)
            conn.commit()
            state = read_state(conn, database, known)
            if state.edited:
                raise SchemaMigrationError(
                    f"migration(s) {', '.join(state.edited)} changed after they were applied "
                    f"to {database}: a released migration is never edited; restore the file "
                    "and add a new migration instead"
                )
            applied = []
            for migration in state.pending:
                if up_to is not None and migration.version > up_to:
                    break
                _apply_one(conn, cur, migration, state.records.get(migration.version), before)
                applied.append(migration.name)
            return applied
        finally:
            _release(cur)


def _release(cur: Any) -> None:
    try:
        cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
        cur.fetchall()
    except pymysql.err.Error:
        pass  # the connection is gone, and the server released the lock with it


def _apply_one(
    conn: Any, cur: Any, migration: Migration, record: Record | None, before: Statement
) -> None:
    parts = migration.statements()
    done = record.statements_done if record else 0
    if record is None:
        cur.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )
        conn.commit()
    for number, statement in enumerate(parts[done:], start=done + 1):
        before(conn)
        where = f"{migration.name}, statement {number} of {len(parts)}"
        try:
            cur.execute(statement)
        except pymysql.err.OperationalError as exc:
            if _code(exc) == CR_SERVER_LOST:
                raise StatementInterrupted(
                    f"{where}: the connection was lost while it ran (MySQL error 2013)"
                ) from exc
            conn.rollback()
            raise _statement_failed(where, exc) from exc
        except pymysql.err.MySQLError as exc:
            conn.rollback()
            raise _statement_failed(where, exc) from exc
        # DML in a migration commits together with its progress: exactly once
        cur.execute(
            "UPDATE schema_migrations SET statements_done = %s WHERE version = %s",
            (number, migration.version),
        )
        conn.commit()
    cur.execute(
        "UPDATE schema_migrations SET applied_at = CURRENT_TIMESTAMP(6) WHERE version = %s",
        (migration.version,),
    )
    conn.commit()


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _read_only(where: str, code: int | None) -> SchemaMigrationError:
    return SchemaMigrationError(
        f"{where}: the database is read-only (MySQL error {code}): this is not the writer. "
        "Migrations run against the active region's writer; check `drctl status`"
    )


def _bookkeeping_failed(exc: pymysql.err.MySQLError) -> Exception:
    """A statement of the runner's own (the lock, the database, schema_migrations) failed."""
    code = _code(exc)
    if code in (ER_OPTION_PREVENTS_STATEMENT, ER_READ_ONLY_MODE):
        return _read_only("schema migration", code)
    return LedgerUnavailable(f"schema migration failed (MySQL error {code})")


def _statement_failed(where: str, exc: pymysql.err.MySQLError) -> SchemaMigrationError:
    code = _code(exc)
    if code in (ER_OPTION_PREVENTS_STATEMENT, ER_READ_ONLY_MODE):
        return _read_only(where, code)
    if code == ER_LOCK_WAIT_TIMEOUT:
        return SchemaMigrationError(
            f"{where}: a table it alters stayed locked by other sessions (MySQL error 1205, "
            "waited the migration's lock limit): nothing of this statement took effect; run "
            "it again when the long transaction has ended"
        )
    message = exc.args[1] if len(exc.args) > 1 else type(exc).__name__
    return SchemaMigrationError(
        f"{where} failed (MySQL error {code}: {message}); the statements before it are applied "
        "and recorded, the next run starts with this one"
    )


def ensure_app_user(conn: Any, database: str, user: str, password: str, host: str = "%") -> bool:
    """Create (or re-password) the application user with exactly the grants the functions need;
    its rotation partner (<user>_clone or <user> without it), when it exists, gets the same
    grants, so a table a migration adds is granted to whichever user the secret names next.
    Returns True when the user was created now."""
    _check_user(user)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
        created = cur.fetchone()[0] == 0
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
        partner = (
            user[: -len(ROTATION_CLONE_SUFFIX)]
            if user.endswith(ROTATION_CLONE_SUFFIX)
            else user + ROTATION_CLONE_SUFFIX
        )
        cur.execute(
            "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s", (partner, host)
        )
        grantees = [user, partner] if cur.fetchone()[0] else [user]
        for grantee in grantees:
            for grant in APP_GRANTS:
                cur.execute(grant.format(db=database, user=grantee, host=host))
    conn.commit()
    return created


def _check_user(user: str) -> None:
    if not _USER.match(user):
        # quoted into GRANT statements (MySQL takes no placeholders there)
        raise SchemaMigrationError(f"application user name {user!r} is not [A-Za-z0-9_]{{1,26}}")


# -- SchemaMigrationFunction's door: the master user, through MySQLConnector ----------------------


@dataclass(frozen=True)
class Migrated:
    applied: list[str]
    state: SchemaState  # after
    app_user: str
    app_user_created: bool


class MySQLLedgerSchema:
    """The ledger's schema on Aurora: `connector` reaches the writer as the master user (its
    secret is given to SchemaMigrationFunction only), `app_credentials` is the application
    user's secret, whose password the user is given."""

    def __init__(
        self,
        connector: MySQLConnector,
        *,
        database: str,
        app_credentials: SecretCredentials,
        known: Sequence[Migration] | None = None,
        ddl_lock_wait: int = DDL_LOCK_WAIT_SECONDS,
        lock_timeout: int = LOCK_TIMEOUT_SECONDS,
        kill_reserve: float = KILL_RESERVE_SECONDS,
    ) -> None:
        self._connector = connector
        self._database = database
        self._app = app_credentials
        self._known = tuple(migrations() if known is None else known)
        self._ddl_lock_wait = ddl_lock_wait
        self._lock_timeout = lock_timeout
        self._kill_reserve = kill_reserve

    def state(self) -> SchemaState:
        conn = self._connector.connect()
        try:
            set_io_timeout(conn, time_left(self._connector.io_timeout))
            return read_state(conn, self._database, self._known)
        except pymysql.err.MySQLError as exc:
            raise LedgerUnavailable(f"cannot read the schema (MySQL error {_code(exc)})") from exc
        finally:
            _close(conn)

    def migrate(self) -> Migrated:
        app = self._app_credentials()  # before any change: a missing secret changes nothing
        _check_user(app.username)
        conn = self._connector.connect()
        thread = conn.thread_id()
        try:
            applied = self._apply(conn, thread)
            self._bound(conn)
            try:
                created = ensure_app_user(conn, self._database, app.username, app.password)
            except pymysql.err.MySQLError as exc:
                # The server's message may quote the statement, password and all: the code only.
                raise SchemaMigrationError(
                    f"application user {app.username}: MySQL error {_code(exc)}"
                ) from None
            state = read_state(conn, self._database, self._known)
        except pymysql.err.MySQLError as exc:
            raise _bookkeeping_failed(exc) from exc
        finally:
            _close(conn)
        return Migrated(applied, state, app.username, created)

    def _apply(self, conn: Any, thread: int) -> list[str]:
        try:
            return apply(
                conn,
                self._database,
                known=self._known,
                before_statement=self._bound,
                ddl_lock_wait=self._ddl_lock_wait,
                lock_timeout=self._lock_timeout,
            )
        except StatementInterrupted as exc:
            # Our socket gave up (at the deadline, or the network did) while the server may
            # still run the statement: stop it there, so it either took effect before and was
            # recorded, or it did not.
            stopped = self._kill(thread)
            raise SchemaMigrationError(
                f"{exc}; {'stopped on the server' if stopped else 'could not be stopped'}: "
                "run again (it goes on from this statement)"
            ) from exc

    def _bound(self, conn: Any) -> None:
        """The next statement may wait until the deadline, less what stopping it takes."""
        seconds = time_left(self._connector.io_timeout)
        if seconds > 2 * self._kill_reserve:
            seconds -= self._kill_reserve
        set_io_timeout(conn, seconds)

    def _app_credentials(self) -> DbCredentials:
        try:
            return self._app.get()
        except DeadlineExceeded:
            raise
        except GetParameterError as exc:
            raise SchemaMigrationError("cannot read the application user's secret") from exc
        except (TransformParameterError, KeyError, TypeError, ValueError) as exc:
            raise SchemaMigrationError("the application user's secret is malformed") from exc

    def _kill(self, thread: int) -> bool:
        try:
            conn = self._connector.connect(timeout=self._kill_reserve)
        except (LedgerUnavailable, DeadlineExceeded):
            return False  # best effort: the server ends it when it notices the client gone
        try:
            with conn.cursor() as cur:
                cur.execute("KILL QUERY %s", (thread,))
            return True
        except pymysql.err.MySQLError:
            return True  # no such thread: it ended already
        finally:
            _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except pymysql.err.Error:
        pass  # already closed by the server
