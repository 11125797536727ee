"""The refund rules the ledger enforces, each through the real handler against MariaDB: a refund
of a refund, in another currency, or by other parties is REJECTED with its code and changes
nothing (the charge's refunded total stays where it was)."""

from __future__ import annotations

from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from tests.conftest import ledger_rows
from tests.integration.scenario import charge, refund

pytestmark = pytest.mark.integration


@pytest.fixture
def charged(sandbox: Any, lambda_context: Any) -> Any:
    """A USD charge of 10,000 and a partial refund of 1,000 already booked."""
    assert lambda_handler(charge("pay-rule-1", amount_minor=10_000), lambda_context) == {
        "payment_id": "pay-rule-1",
        "outcome": "PROCESSED",
    }
    assert lambda_handler(refund("ref-rule-1", "pay-rule-1", 1_000), lambda_context) == {
        "payment_id": "ref-rule-1",
        "outcome": "PROCESSED",
    }
    return sandbox


def _refused(sandbox: Any, answer: dict[str, Any], code: str, payment_id: str) -> None:
    assert answer["outcome"] == "REJECTED", answer
    assert answer["reason"].startswith(f"{code}: "), answer
    assert ledger_rows(
        sandbox.mariadb, "SELECT payment_id, refunded_minor FROM payments ORDER BY payment_id"
    ) == [("pay-rule-1", 1_000), ("ref-rule-1", 0)]
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM ledger_entries") == [(4,)]
    assert sandbox.session_item(payment_id) is None
    assert [(m["outcome"], m["code"]) for m in sandbox.parked()] == [("REJECTED", code)]


def test_a_refund_of_a_refund_is_rejected(charged: Any, lambda_context: Any) -> None:
    answer = lambda_handler(refund("ref-rule-2", "ref-rule-1", 100), lambda_context)
    _refused(charged, answer, "REFUND_OF_REFUND", "ref-rule-2")


def test_a_refund_in_another_currency_is_rejected(charged: Any, lambda_context: Any) -> None:
    answer = lambda_handler(refund("ref-rule-3", "pay-rule-1", 100, currency="EUR"), lambda_context)
    _refused(charged, answer, "REFUND_CURRENCY_MISMATCH", "ref-rule-3")


@pytest.mark.parametrize(
    "parties",
    [
        {"merchant_id": "merchant-other"},
        {"customer_id": "cust-other"},
        {"merchant_id": "MERCHANT-ACME"},  # another merchant, by the contract's case rule
    ],
)
def test_a_refund_by_other_parties_is_rejected(
    charged: Any, lambda_context: Any, parties: dict[str, str]
) -> None:
    answer = lambda_handler(refund("ref-rule-4", "pay-rule-1", 100, **parties), lambda_context)
    _refused(charged, answer, "REFUND_PARTY_MISMATCH", "ref-rule-4")


def test_a_refund_above_what_is_left_is_rejected(charged: Any, lambda_context: Any) -> None:
    answer = lambda_handler(refund("ref-rule-5", "pay-rule-1", 9_001), lambda_context)
    _refused(charged, answer, "REFUND_EXCEEDS_CHARGE", "ref-rule-5")


def test_what_is_left_can_still_be_refunded(charged: Any, lambda_context: Any) -> None:
    answer = lambda_handler(refund("ref-rule-6", "pay-rule-1", 9_000), lambda_context)

    assert answer == {"payment_id": "ref-rule-6", "outcome": "PROCESSED"}
    assert ledger_rows(
        charged.mariadb, "SELECT refunded_minor FROM payments WHERE payment_id = 'pay-rule-1'"
    ) == [(10_000,)]
    item = charged.session_item("pay-rule-1")
    assert item is not None and item["refunded_minor"] == {"N": "10000"}
