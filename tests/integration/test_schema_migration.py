"""SchemaMigrationFunction through its handler, in-process: the master and application secrets in
moto, a real MariaDB as the ledger, the same migration files and module the deploy packages.
What it must guarantee: every migration once and in order, a re-run with nothing pending changes
nothing, a half-done migration goes on where it stopped, the application user gets exactly its
grants and its secret's password, and it refuses (clearly, changing nothing) when it must."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pymysql
import pytest
from moto import mock_aws

from schema_migration.handler import respond
from schema_migration.wiring import build_schema
from shared import config
from shared.adapters import ledger_schema
from shared.adapters.ledger import payments_since
from shared.adapters.ledger_schema import Migration, MySQLLedgerSchema
from tests.conftest import MASTER_PASSWORD, MASTER_USER, LambdaContextStub

pytestmark = pytest.mark.integration

DATABASE = "payments_schema_fn"
FN_APP_USER = "schema_fn_app"
FN_APP_PASSWORD = "Tst-schema-app-pw-4410"
ROTATED_APP_PASSWORD = "Tst-schema-app-pw-rotated-8812"
REAL = tuple(ledger_schema.migrations())
LATEST = REAL[-1].version
INDEX_VERSION = next(m.version for m in REAL if "processed_at_index" in m.name)


@dataclass
class Setup:
    server: Any
    env: dict[str, str]
    secrets: Any
    app_secret: str

    def schema(self, **options: Any) -> MySQLLedgerSchema:
        """The function's own adapter; ``options``: other migrations or limits."""
        return build_schema(config.load(config.SchemaMigrationSettings, self.env), **options)

    def invoke(self, event: Any = None, *, remaining_ms: int = 900_000, **options: Any) -> Any:
        return respond(
            {"action": "apply"} if event is None else event,
            LambdaContextStub(remaining_ms),
            schema=self.schema(**options),
            deadline_margin=0.5,
        )

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.server.root() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def as_app(self, password: str = FN_APP_PASSWORD) -> Any:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=FN_APP_USER,
            password=password,
            database=DATABASE,
            autocommit=True,
        )


def _drop(server: Any) -> None:
    with server.root() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        for user in (FN_APP_USER, FN_APP_USER + "_clone"):
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))


@pytest.fixture
def setup(ledger_db: Any) -> Iterator[Setup]:
    _drop(ledger_db)
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        master = secrets.create_secret(
            Name="dr-payment-aurora-master-test",
            SecretString=json.dumps({"username": MASTER_USER, "password": MASTER_PASSWORD}),
        )["ARN"]
        app = secrets.create_secret(
            Name="dr-payment-aurora-app-test",
            SecretString=json.dumps({"username": FN_APP_USER, "password": FN_APP_PASSWORD}),
        )["ARN"]
        env = {
            "ENVIRONMENT": "test",
            "REGION_ROLE": "primary",
            "AWS_REGION": "us-east-1",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(ledger_db.port),
            "DB_NAME": DATABASE,
            "DB_SECRET_ID": master,
            "APP_SECRET_ID": app,
            "DB_TLS": "false",
            "MIGRATION_LOCK_WAIT_SECONDS": "1",
        }
        yield Setup(ledger_db, env, secrets, app)
    _drop(ledger_db)


def _records(setup: Setup) -> list[tuple[Any, ...]]:
    return setup.rows(
        f"SELECT version, name, checksum, statements_done, applied_at FROM `{DATABASE}`."
        "schema_migrations ORDER BY version"
    )


def _payment(cur: Any, payment_id: str, processed_at: datetime) -> None:
    cur.execute(
        f"INSERT INTO `{DATABASE}`.payments (payment_id, type, merchant_id, customer_id, "
        "amount_minor, currency, occurred_at, processed_at, processed_region, payload_hash) "
        "VALUES (%s, 'CHARGE', 'm-1', 'c-1', 100, 'USD', %s, %s, 'us-east-1', %s)",
        (payment_id, processed_at, processed_at, "a" * 64),
    )


def test_a_fresh_database_gets_every_migration_and_a_least_privilege_app_user(
    setup: Setup,
) -> None:
    answer = setup.invoke()

    assert answer["ok"], answer
    assert answer["applied"] == [m.name for m in REAL]
    assert (answer["version"], answer["pending"], answer["unknown"]) == (LATEST, [], [])
    assert (answer["app_user"], answer["app_user_created"]) == (FN_APP_USER, True)
    records = _records(setup)
    assert [(r[0], r[1], r[2], r[3]) for r in records] == [
        (m.version, m.name, m.checksum, len(m.statements())) for m in REAL
    ]
    assert all(r[4] is not None for r in records)
    # The application user can book and read, and nothing else.
    with setup.as_app() as conn, conn.cursor() as cur:
        _payment(cur, "pay-app-1", datetime(2026, 11, 30, tzinfo=UTC))
        cur.execute(
            "INSERT INTO ledger_entries (payment_id, account, amount_minor, currency) "
            "VALUES ('pay-app-1', 'merchant:m-1', 100, 'USD')"
        )
        cur.execute("UPDATE payments SET refunded_minor = 0 WHERE payment_id = 'pay-app-1'")
        for forbidden in (
            "DELETE FROM payments",
            "DELETE FROM ledger_entries",
            "UPDATE ledger_entries SET amount_minor = 0",
            "DROP TABLE ledger_entries",
            "ALTER TABLE payments ADD COLUMN x INT",
            "SELECT * FROM schema_migrations",
            "CREATE TABLE shadow (id INT)",
        ):
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute(forbidden)
            assert refused.value.args[0] in (1142, 1143), forbidden  # command denied


def test_a_second_run_with_nothing_pending_changes_nothing(setup: Setup) -> None:
    assert setup.invoke()["ok"]
    before = _records(setup)

    again = setup.invoke()

    assert again["ok"], again
    assert (again["applied"], again["pending"], again["version"]) == ([], [], LATEST)
    assert again["app_user_created"] is False
    assert _records(setup) == before  # not one migration touched again
    with setup.as_app() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM payments")


def test_status_reports_what_is_pending_and_creates_nothing(setup: Setup) -> None:
    answer = setup.invoke({"action": "status"})

    assert answer == {
        "ok": True,
        "action": "status",
        "database": DATABASE,
        "version": 0,
        "pending": [m.name for m in REAL],
        "unknown": [],
    }
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []


def test_the_application_user_follows_its_secret(setup: Setup) -> None:
    assert setup.invoke()["ok"]
    setup.secrets.put_secret_value(
        SecretId=setup.app_secret,
        SecretString=json.dumps({"username": FN_APP_USER, "password": ROTATED_APP_PASSWORD}),
    )

    assert setup.invoke()["ok"]

    with setup.as_app(ROTATED_APP_PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM payments")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        setup.as_app(FN_APP_PASSWORD)
    assert refused.value.args[0] == 1045


def test_the_rotation_partner_gets_the_same_grants(setup: Setup) -> None:
    """The alternating-users rotation makes <user>_clone with the grants <user> had then: a grant
    given later must reach the clone too, or the next flip leaves the functions without it."""
    with setup.server.root() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE USER %s@'%%' IDENTIFIED BY %s", (FN_APP_USER + "_clone", FN_APP_PASSWORD)
        )

    assert setup.invoke()["ok"]

    clone = pymysql.connect(
        host="127.0.0.1",
        port=setup.server.port,
        user=FN_APP_USER + "_clone",
        password=FN_APP_PASSWORD,  # its own password is left alone
        database=DATABASE,
    )
    with clone, clone.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM ledger_entries")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("DELETE FROM payments")


def _with(extra: Migration) -> tuple[Migration, ...]:
    return (*REAL, extra)


def test_a_failed_statement_is_reported_and_the_next_run_goes_on_from_it(setup: Setup) -> None:
    # Statement 2 needs a table that does not exist yet; statement 1 cannot run twice.
    extra = Migration(
        LATEST + 1,
        f"{LATEST + 1:04d}_test_two_steps.sql",
        "CREATE TABLE step_one (id INT PRIMARY KEY);\nINSERT INTO step_two (id) VALUES (1);\n",
    )

    failed = setup.invoke(known=_with(extra))

    assert failed["ok"] is False
    assert f"{extra.name}, statement 2 of 2" in failed["error"]
    assert (
        "MySQL error 1146" in failed["error"] and "next run starts with this one" in failed["error"]
    )
    assert _records(setup)[-1][:4] == (extra.version, extra.name, extra.checksum, 1)
    assert _records(setup)[-1][4] is None  # not complete
    with setup.server.root(DATABASE) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE step_two (id INT PRIMARY KEY)")

    resumed = setup.invoke(known=_with(extra))

    assert resumed["ok"], resumed
    assert resumed["applied"] == [extra.name] and resumed["version"] == extra.version
    assert setup.rows(f"SELECT id FROM `{DATABASE}`.step_two") == [(1,)]  # the DML: once


def test_an_applied_migration_that_was_edited_is_refused(setup: Setup) -> None:
    assert setup.invoke()["ok"]
    before = _records(setup)
    edited = Migration(REAL[-1].version, REAL[-1].name, REAL[-1].sql + "\n-- edited\n")
    extra = Migration(
        LATEST + 1, f"{LATEST + 1:04d}_test_after.sql", "CREATE TABLE after_edit (id INT);"
    )

    answer = setup.invoke(known=(*REAL[:-1], edited, extra))

    assert answer["ok"] is False
    assert f"{REAL[-1].name} changed after they were applied" in answer["error"]
    assert _records(setup) == before  # the later migration did not run either
    assert setup.rows(f"SHOW TABLES IN `{DATABASE}` LIKE 'after_edit'") == []


def test_one_migration_at_a_time(setup: Setup) -> None:
    with setup.server.root() as holder, holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (ledger_schema.LOCK_NAME,))
        assert cur.fetchone() == (1,)

        answer = setup.invoke(lock_timeout=1)

    assert answer["ok"] is False and "another schema migration holds the lock" in answer["error"]
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []  # nothing done meanwhile
    assert setup.invoke()["ok"]  # released with its session


def test_a_table_held_by_a_long_transaction_fails_the_ddl_instead_of_queueing_writes(
    setup: Setup,
) -> None:
    assert setup.invoke()["ok"]
    extra = Migration(
        LATEST + 1,
        f"{LATEST + 1:04d}_test_alter.sql",
        "ALTER TABLE payments ADD COLUMN note VARCHAR(16) NULL;",
    )
    with setup.server.root(DATABASE) as reader, reader.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT COUNT(*) FROM payments")  # holds the table's metadata lock

        answer = setup.invoke(known=_with(extra), ddl_lock_wait=1)

        cur.execute("COMMIT")
    assert answer["ok"] is False
    assert "MySQL error 1205" in answer["error"] and "run it again" in answer["error"]
    assert _records(setup)[-1][3:] == (0, None)  # begun, nothing took effect
    assert setup.invoke(known=_with(extra))["applied"] == [extra.name]


def test_a_read_only_database_is_not_the_writer_and_is_left_alone(setup: Setup) -> None:
    setup.server.set_read_only(True)

    answer = setup.invoke()

    assert answer["ok"] is False
    assert "read-only" in answer["error"] and "not the writer" in answer["error"]
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []


def test_an_unreadable_application_secret_changes_nothing(setup: Setup) -> None:
    setup.env["APP_SECRET_ID"] = "dr-payment-aurora-app-missing"

    answer = setup.invoke()

    assert answer == {
        "ok": False,
        "action": "apply",
        "error": "cannot read the application user's secret",
    }
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []


@pytest.mark.parametrize("event", [{"action": "drop"}, {"action": "apply", "up_to": 1}, "apply"])
def test_anything_but_a_known_request_is_refused(setup: Setup, event: Any) -> None:
    answer = setup.invoke(event)

    assert answer["ok"] is False and answer["error"].startswith("invalid request")
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []


def test_a_statement_that_outlasts_the_deadline_is_stopped_on_the_server(setup: Setup) -> None:
    assert setup.invoke()["ok"]
    slow = Migration(LATEST + 1, f"{LATEST + 1:04d}_test_slow.sql", "DO SLEEP(60);")

    answer = setup.invoke(remaining_ms=4_000, known=_with(slow), kill_reserve=1.0)

    assert answer["ok"] is False
    assert f"{slow.name}, statement 1 of 1" in answer["error"]
    assert "stopped on the server" in answer["error"]
    assert _records(setup)[-1][3:] == (0, None)
    # The server is not left running it (KILL QUERY ends the sleep at once).
    running = setup.rows(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'DO SLEEP%%'"
    )
    for _ in range(50):
        if running == [(0,)]:
            break
        time.sleep(0.1)
        running = setup.rows(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'DO SLEEP%%'"
        )
    assert running == [(0,)]


def test_migration_0003_lets_the_ledger_export_read_only_the_recent_rows(setup: Setup) -> None:
    """drctl reconcile pages through payments_since(T): with the index it reads the rows since T,
    without it the whole table (the Handler_read_* counters: rows the engine handed over)."""
    with setup.server.root() as conn:
        ledger_schema.apply(conn, DATABASE, up_to=INDEX_VERSION - 1)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    total = 3000
    with setup.server.root(DATABASE) as conn, conn.cursor() as cur:
        for n in range(total):
            _payment(cur, f"pay-{n:05d}", start + timedelta(minutes=n))
        cur.execute("ANALYZE TABLE payments")
    since = start + timedelta(minutes=total - 30)

    def rows_scanned() -> tuple[int, int]:
        with setup.server.root(DATABASE) as conn, conn.cursor() as cur:
            cur.execute("FLUSH STATUS")
            found = payments_since(cur, since=since, after="", limit=1000)
            cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%%'")
            return len(found), sum(int(value) for _name, value in cur.fetchall())

    found_before, scanned_before = rows_scanned()
    assert setup.invoke()["applied"] == [m.name for m in REAL if m.version >= INDEX_VERSION]
    found_after, scanned_after = rows_scanned()

    assert found_before == found_after == 30
    assert scanned_before >= total  # every row, in primary-key order
    assert scanned_after < 100  # the 30 recent rows, through the index


def test_concurrent_runs_apply_each_migration_once(setup: Setup) -> None:
    answers: list[Any] = []

    def run() -> None:
        answers.append(setup.invoke(lock_timeout=30))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(answer["ok"] for answer in answers), answers
    applied = sorted(name for answer in answers for name in answer["applied"])
    assert applied == sorted(m.name for m in REAL)  # each exactly once, by whichever ran first
    assert [r[0] for r in _records(setup)] == [m.version for m in REAL]


def test_an_application_user_name_that_is_not_a_plain_name_is_refused(setup: Setup) -> None:
    setup.secrets.put_secret_value(
        SecretId=setup.app_secret,
        SecretString=json.dumps({"username": "x'@'%' WITH GRANT", "password": FN_APP_PASSWORD}),
    )

    answer = setup.invoke()

    assert answer["ok"] is False and "is not [A-Za-z0-9_]" in answer["error"]
    assert setup.rows("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'x%%'") == [(0,)]
    assert setup.rows("SHOW DATABASES LIKE %s", DATABASE) == []  # refused before any change
