"""Ids are case-sensitive everywhere (the contract): two ids that differ only in case are two
payments, a refund finds its charge only by the exact id, and accounts never merge by case.
Through the real handler against MariaDB and moto."""

from __future__ import annotations

from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from tests.conftest import ledger_rows
from tests.integration.scenario import charge, refund

pytestmark = pytest.mark.integration


def test_ids_that_differ_only_in_case_are_two_payments(sandbox: Any, lambda_context: Any) -> None:
    first = lambda_handler(
        charge("Case-Pay-X", customer_id="cust-one", amount_minor=1_000), lambda_context
    )
    second = lambda_handler(
        charge("case-pay-X", customer_id="cust-two", amount_minor=2_500), lambda_context
    )

    assert first == {"payment_id": "Case-Pay-X", "outcome": "PROCESSED"}
    assert second == {"payment_id": "case-pay-X", "outcome": "PROCESSED"}
    assert ledger_rows(
        sandbox.mariadb,
        "SELECT payment_id, customer_id, amount_minor FROM payments ORDER BY amount_minor",
    ) == [("Case-Pay-X", "cust-one", 1_000), ("case-pay-X", "cust-two", 2_500)]
    assert ledger_rows(
        sandbox.mariadb,
        "SELECT payment_id, SUM(ABS(amount_minor)) FROM ledger_entries "
        "GROUP BY payment_id ORDER BY 2",
    ) == [("Case-Pay-X", 2_000), ("case-pay-X", 5_000)]
    upper, lower = sandbox.session_item("Case-Pay-X"), sandbox.session_item("case-pay-X")
    assert upper is not None and upper["amount_minor"] == {"N": "1000"}
    assert lower is not None and lower["amount_minor"] == {"N": "2500"}
    assert sandbox.parked() == []


def test_a_refund_finds_its_charge_only_by_the_exact_id(sandbox: Any, lambda_context: Any) -> None:
    assert lambda_handler(charge("Case-Pay-X"), lambda_context)["outcome"] == "PROCESSED"

    answer = lambda_handler(refund("ref-case-1", "CASE-PAY-X", 100), lambda_context)

    assert answer["outcome"] == "PARKED"
    assert answer["reason"].startswith("ORIGINAL_NOT_FOUND")
    assert ledger_rows(sandbox.mariadb, "SELECT payment_id, refunded_minor FROM payments") == [
        ("Case-Pay-X", 0)
    ]
    assert sandbox.session_item("ref-case-1") is None
    assert [m["code"] for m in sandbox.parked()] == ["ORIGINAL_NOT_FOUND"]


def test_accounts_that_differ_only_in_case_stay_apart(sandbox: Any, lambda_context: Any) -> None:
    lambda_handler(charge("pay-acme-upper", merchant_id="ACME", amount_minor=700), lambda_context)
    lambda_handler(charge("pay-acme-lower", merchant_id="acme", amount_minor=300), lambda_context)

    assert ledger_rows(
        sandbox.mariadb,
        "SELECT account, SUM(amount_minor) FROM ledger_entries "
        "WHERE account LIKE 'merchant:%%' GROUP BY account ORDER BY 2",
    ) == [("merchant:acme", 300), ("merchant:ACME", 700)]
    assert ledger_rows(
        sandbox.mariadb,
        "SELECT COUNT(*) FROM ledger_entries WHERE account = 'merchant:acme'",
    ) == [(1,)]


def test_the_sessions_table_keys_are_case_exact(sandbox: Any, lambda_context: Any) -> None:
    """DynamoDB compares key bytes: the projection of one id is never found under another case."""
    lambda_handler(charge("Case-Pay-X"), lambda_context)

    assert sandbox.session_item("Case-Pay-X") is not None
    assert sandbox.session_item("CASE-PAY-X") is None
    assert sandbox.session_item("case-pay-x") is None
