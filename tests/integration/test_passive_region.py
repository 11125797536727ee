"""A passive region writes nothing. Two fences: the region-control item (naming the other region,
or missing: fail closed) and the database answering read-only. Either way the event is parked for
redrive, the ledger and the sessions table stay empty, and one clear WARNING says why. The second
fence only holds if the application's database user cannot override read_only: proven here."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from payment_processor.handler import lambda_handler
from shared.observability import logger
from tests.conftest import APP_PASSWORD, APP_USER, PRIMARY, ledger_rows, load_event

pytestmark = pytest.mark.integration

EVENT = "01_charge_usd.json"
# Privileges that override read_only or administer the server (MariaDB 10.11 and MySQL 8 names).
ADMIN_PRIVILEGES = {
    "ALL",
    "ALL PRIVILEGES",
    "SUPER",
    "READ_ONLY ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
    "CONNECTION ADMIN",
    "CONNECTION_ADMIN",
    "BINLOG ADMIN",
    "REPLICATION MASTER ADMIN",
    "REPLICA MONITOR",
    "SHUTDOWN",
    "PROCESS",
    "FILE",
    "RELOAD",
    "CREATE USER",
    "GRANT OPTION",
    "DROP",
    "ALTER",
    "DELETE",
}


class _CurrentStdout:
    """Writes to whatever sys.stdout is at the time: capsys's while the test runs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Powertools log lines (JSON on stdout) written during the test. Its handler holds the
    stdout of import time (pytest's global capture), so point it at capsys's for this test."""
    monkeypatch.setattr(logger.registered_handler, "stream", _CurrentStdout())

    def read() -> list[dict[str, Any]]:
        lines = []
        for line in capsys.readouterr().out.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "level" in record:
                lines.append(record)
        return lines

    return read


def _nothing_written(sandbox: Any) -> None:
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM ledger_entries") == [(0,)]
    assert sandbox.dynamodb.scan(TableName=sandbox.env["SESSIONS_TABLE"])["Count"] == 0


def _one_clear_warning(lines: list[dict[str, Any]], code: str) -> None:
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert warning["message"] == f"payment parked: {code}"
    assert (warning["code"], warning["outcome"]) == (code, "PARKED")
    assert warning["payment_id"] == "pay-usd-0001"
    assert "redrive" in warning["reason"]
    assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []


def _parked_once(sandbox: Any, code: str) -> dict[str, Any]:
    (message,) = sandbox.parked()
    assert (message["outcome"], message["code"], message["region"]) == ("PARKED", code, PRIMARY)
    assert message["event"] == load_event(EVENT)  # the whole event, for redrive
    return message


@pytest.mark.parametrize(
    "control", ["us-west-2", None], ids=["item-names-us-west-2", "item-missing"]
)
def test_passive_region_parks_and_writes_nothing(
    sandbox: Any,
    lambda_context: Any,
    log_lines: Callable[[], list[dict[str, Any]]],
    control: str | None,
) -> None:
    if control is None:
        sandbox.dynamodb.delete_item(
            TableName=sandbox.env["REGION_CONTROL_TABLE"], Key={"pk": {"S": "active-region"}}
        )
    else:
        sandbox.set_active_region(control)

    result = lambda_handler(load_event(EVENT), lambda_context)

    assert result["outcome"] == "PARKED"
    assert result["reason"].startswith("REGION_PASSIVE: ")
    _nothing_written(sandbox)
    message = _parked_once(sandbox, "REGION_PASSIVE")
    _one_clear_warning(log_lines(), "REGION_PASSIVE")

    # Promoted: the parked event, redriven, is processed.
    sandbox.set_active_region(PRIMARY)
    assert lambda_handler(message["event"], lambda_context)["outcome"] == "PROCESSED"
    assert ledger_rows(sandbox.mariadb, "SELECT payment_id FROM payments") == [("pay-usd-0001",)]


def test_read_only_database_parks_and_writes_nothing(
    sandbox: Any, lambda_context: Any, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    sandbox.mariadb.set_read_only(True)

    result = lambda_handler(load_event(EVENT), lambda_context)

    assert result["outcome"] == "PARKED"
    assert result["reason"].startswith("DATABASE_READ_ONLY: ")
    _nothing_written(sandbox)
    _parked_once(sandbox, "DATABASE_READ_ONLY")
    _one_clear_warning(log_lines(), "DATABASE_READ_ONLY")


def _app_connection(sandbox: Any) -> Any:
    return pymysql.connect(
        host="127.0.0.1",
        port=sandbox.mariadb.port,
        user=APP_USER,
        password=APP_PASSWORD,
        database="payments",
        autocommit=True,
    )


def _grants(sandbox: Any) -> dict[str, set[str]]:
    """SHOW GRANTS of the app user, as {object: privileges}."""
    with _app_connection(sandbox) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        lines = [row[0] for row in cur.fetchall()]
    grants: dict[str, set[str]] = {}
    for line in lines:
        match = re.match(r"GRANT (.+?) ON (\S+) TO ", line)
        assert match, line
        privileges = {p.strip().upper() for p in match.group(1).split(",")}
        grants.setdefault(match.group(2), set()).update(privileges)
        if "WITH GRANT OPTION" in line.upper():
            grants[match.group(2)].add("GRANT OPTION")
    return grants


def test_app_user_has_no_admin_privileges(sandbox: Any) -> None:
    grants = _grants(sandbox)

    assert grants.pop("*.*") == {"USAGE"}  # nothing server-wide
    assert grants, "the app user should hold table grants on the ledger"
    for target, privileges in grants.items():
        assert target.startswith("`payments`."), target
        assert privileges <= {"SELECT", "INSERT", "UPDATE"}, (target, privileges)
        assert not privileges & ADMIN_PRIVILEGES, (target, privileges)


def test_read_only_binds_the_app_user(sandbox: Any) -> None:
    sandbox.mariadb.set_read_only(True)
    insert = (
        "INSERT INTO payments (payment_id, type, merchant_id, customer_id, amount_minor, "
        "currency, occurred_at, processed_at, processed_region, payload_hash) VALUES "
        "(%s, 'CHARGE', 'm', 'c', 1, 'USD', NOW(), NOW(), 'us-east-1', REPEAT('0', 64))"
    )
    with _app_connection(sandbox) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@global.read_only")
        assert cur.fetchone() == (1,)
        with pytest.raises(pymysql.err.MySQLError) as refused:
            cur.execute(insert, ("pay-app-user",))
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: what the ledger maps

    # An administrator is not bound by read_only: why the app user must never be one.
    with sandbox.mariadb.root("payments") as root, root.cursor() as cur:
        cur.execute(insert, ("pay-root",))
    assert ledger_rows(sandbox.mariadb, "SELECT payment_id FROM payments") == [("pay-root",)]
