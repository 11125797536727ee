"""The real handler, moto and MariaDB: each sample event's outcome and what it leaves behind."""

from __future__ import annotations

from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from tests.conftest import ledger_rows, load_event

pytestmark = pytest.mark.integration


def invoke(name: str, context: Any) -> dict[str, Any]:
    return lambda_handler(load_event(name), context)


def test_charge_is_processed_once_and_projected(sandbox: Any, lambda_context: Any) -> None:
    first = invoke("01_charge_usd.json", lambda_context)
    again = invoke("06_duplicate_charge_usd.json", lambda_context)

    assert first == {"payment_id": "pay-usd-0001", "outcome": "PROCESSED"}
    assert again["outcome"] == "DUPLICATE"
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(1,)]
    assert ledger_rows(
        sandbox.mariadb, "SELECT account, amount_minor FROM ledger_entries ORDER BY account"
    ) == [("customer:cust-1001", -12550), ("merchant:merchant-acme", 12550)]
    item = sandbox.session_item("pay-usd-0001")
    assert item is not None
    assert item["amount_minor"] == {"N": "12550"}
    assert item["status"] == {"S": "PROCESSED"}
    assert sandbox.parked() == []


def test_conflicting_duplicate_is_parked_and_ledger_unchanged(
    sandbox: Any, lambda_context: Any
) -> None:
    invoke("01_charge_usd.json", lambda_context)
    conflict = invoke("07_conflict_charge_usd.json", lambda_context)

    assert conflict["outcome"] == "CONFLICT"
    assert ledger_rows(sandbox.mariadb, "SELECT amount_minor FROM payments") == [(12550,)]
    parked = sandbox.parked()
    assert [(p["outcome"], p["code"]) for p in parked] == [("CONFLICT", "CONFLICT")]


def test_read_only_database_parks_and_writes_nothing(sandbox: Any, lambda_context: Any) -> None:
    sandbox.mariadb.set_read_only(True)
    result = invoke("01_charge_usd.json", lambda_context)

    assert result["outcome"] == "PARKED"
    assert result["reason"].startswith("DATABASE_READ_ONLY")
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sandbox.session_item("pay-usd-0001") is None
    assert [p["code"] for p in sandbox.parked()] == ["DATABASE_READ_ONLY"]
