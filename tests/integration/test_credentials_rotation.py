"""Rotation and failover change the application user's password: the processor fetches the
secret again after "access denied" and carries on in the same invocation, writing once."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from payment_processor.handler import lambda_handler
from shared.errors import LedgerUnavailable
from tests.conftest import APP_PASSWORD, APP_USER, PRIMARY, ledger_rows, load_event

pytestmark = pytest.mark.integration

ROTATED = "Rotated-ledger-pw-2291"


def rotate(sandbox: Any, *, secret_password: str, database_password: str) -> None:
    """What a rotation does: a new secret version and a new password for the user; then every
    open session is dropped (as a failover or a restart would), so the next write reconnects."""
    boto3.client("secretsmanager", region_name=PRIMARY).put_secret_value(
        SecretId=sandbox.env["DB_SECRET_ID"],
        SecretString=json.dumps({"username": APP_USER, "password": secret_password}),
    )
    with sandbox.mariadb.root() as conn, conn.cursor() as cur:
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (APP_USER, database_password))
        cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (APP_USER,))
        for (session_id,) in cur.fetchall():
            cur.execute("KILL CONNECTION %s", (session_id,))


@pytest.fixture
def restore_password(sandbox: Any) -> Any:
    yield sandbox
    rotate(sandbox, secret_password=APP_PASSWORD, database_password=APP_PASSWORD)


def test_rotated_password_is_fetched_again_within_the_invocation(
    restore_password: Any, lambda_context: Any
) -> None:
    sandbox = restore_password
    assert lambda_handler(load_event("01_charge_usd.json"), lambda_context)["outcome"] == (
        "PROCESSED"
    )  # the old secret is now cached for 300 s, and a connection is open

    rotate(sandbox, secret_password=ROTATED, database_password=ROTATED)
    result = lambda_handler(load_event("02_charge_jpy.json"), lambda_context)

    assert result == {"payment_id": "pay-jpy-0001", "outcome": "PROCESSED"}
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(2,)]
    assert sandbox.session_item("pay-jpy-0001") is not None


def test_a_secret_that_does_not_match_fails_the_invocation_cleanly(
    restore_password: Any, lambda_context: Any
) -> None:
    sandbox = restore_password
    rotate(sandbox, secret_password="not-the-password", database_password=ROTATED)

    with pytest.raises(LedgerUnavailable):  # transient: Lambda delivers it again
        lambda_handler(load_event("01_charge_usd.json"), lambda_context)

    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sandbox.session_item("pay-usd-0001") is None
    assert sandbox.parked() == []
