"""The booking rules and the booking transaction, tested directly (no adapter): the same code the
MySQL ledger runs (tests/integration/test_refund_rules_end_to_end.py drives it through MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from payment_processor.booking import book, check_refund, new_record, postings
from payment_processor.models import PaymentDetail
from payment_processor.ports import LedgerResult, Outcome
from shared.errors import OriginalPaymentNotFound, PaymentRejected
from tests.conftest import load_event
from tests.unit.fakes import FakeLedger

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def payment(sample: str = "01_charge_usd.json", **changes: Any) -> PaymentDetail:
    detail = {**load_event(sample)["detail"], **changes}
    return PaymentDetail.parse({k: v for k, v in detail.items() if v is not None})


def charge(**changes: Any) -> PaymentDetail:
    return payment(**{"payment_id": "pay-1", "amount_minor": 10_000, **changes})


def refund(**changes: Any) -> PaymentDetail:
    return payment(
        "05_refund_partial_usd.json",
        **{
            "payment_id": "ref-1",
            "original_payment_id": "pay-1",
            "merchant_id": "merchant-acme",
            "customer_id": "cust-1001",
            "amount_minor": 1_000,
            **changes,
        },
    )


def booked(ledger: FakeLedger, item: PaymentDetail) -> LedgerResult:
    return ledger.run(
        lambda tx: book(tx, item, item.payload_hash(), processed_at=NOW, region="us-east-1")
    )


# -- postings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("item", "sign"), [(charge(), 1), (refund(), -1)])
def test_postings_balance_and_move_value_the_right_way(item: PaymentDetail, sign: int) -> None:
    merchant, customer = postings(item)
    assert merchant.account == f"merchant:{item.merchant_id}"
    assert customer.account == f"customer:{item.customer_id}"
    assert merchant.amount_minor == sign * item.amount_minor
    assert merchant.amount_minor + customer.amount_minor == 0
    assert {merchant.currency, customer.currency} == {item.currency}
    assert {merchant.payment_id, customer.payment_id} == {item.payment_id}


# -- the refund rules, one by one ---------------------------------------------------------------


def _charge_record(**changes: Any) -> Any:
    record = new_record(charge(), "h", processed_at=NOW, region="us-east-1")
    return record.__class__(**{**record.__dict__, **changes})


@pytest.mark.parametrize(
    ("charge_changes", "refund_changes", "code"),
    [
        ({"type": "REFUND"}, {}, "REFUND_OF_REFUND"),
        ({}, {"currency": "EUR"}, "REFUND_CURRENCY_MISMATCH"),
        ({"currency": "JPY"}, {}, "REFUND_CURRENCY_MISMATCH"),
        ({}, {"merchant_id": "merchant-other"}, "REFUND_PARTY_MISMATCH"),
        ({}, {"customer_id": "cust-other"}, "REFUND_PARTY_MISMATCH"),
        ({}, {"merchant_id": "Merchant-Acme"}, "REFUND_PARTY_MISMATCH"),  # case counts
        ({}, {"amount_minor": 10_001}, "REFUND_EXCEEDS_CHARGE"),
        ({"refunded_minor": 9_500}, {"amount_minor": 501}, "REFUND_EXCEEDS_CHARGE"),
    ],
)
def test_a_refund_rule_refuses_with_its_code(
    charge_changes: dict[str, Any], refund_changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(PaymentRejected) as refused:
        check_refund(_charge_record(**charge_changes), refund(**refund_changes))
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("charge_changes", "amount"), [({}, 10_000), ({"refunded_minor": 9_000}, 1_000), ({}, 1)]
)
def test_a_refund_within_what_is_left_passes(charge_changes: dict[str, Any], amount: int) -> None:
    check_refund(_charge_record(**charge_changes), refund(amount_minor=amount))


def test_the_rule_order_names_the_first_problem() -> None:
    """A refund of a refund in another currency is refused as a refund of a refund."""
    with pytest.raises(PaymentRejected) as refused:
        check_refund(_charge_record(type="REFUND"), refund(currency="EUR", amount_minor=10**6))
    assert refused.value.code == "REFUND_OF_REFUND"


# -- the transaction ----------------------------------------------------------------------------


def test_a_charge_is_booked_once_then_answered_duplicate_or_conflict() -> None:
    ledger = FakeLedger()
    first = booked(ledger, charge())
    again = booked(ledger, charge())
    changed = booked(ledger, charge(amount_minor=10_001))

    assert first.outcome is Outcome.PROCESSED
    assert first.records[0].processed_at == NOW and first.records[0].refunded_minor == 0
    assert again.outcome is Outcome.DUPLICATE and again.records == first.records
    assert changed == LedgerResult(Outcome.CONFLICT)
    assert sum(p.amount_minor for p in ledger.postings) == 0
    assert len(ledger.postings) == 2


def test_a_refund_grows_its_charge_and_projects_both() -> None:
    ledger = FakeLedger()
    booked(ledger, charge())
    result = booked(ledger, refund())

    assert result.outcome is Outcome.PROCESSED
    assert [r.payment_id for r in result.records] == ["ref-1", "pay-1"]
    assert result.records[1].refunded_minor == 1_000
    assert ledger.rows["pay-1"].refunded_minor == 1_000
    # Its redelivery re-projects the charge too, as it stands now.
    again = booked(ledger, refund())
    assert again.outcome is Outcome.DUPLICATE
    assert [r.refunded_minor for r in again.records] == [0, 1_000]


def test_a_refund_of_a_missing_charge_writes_nothing() -> None:
    ledger = FakeLedger()
    with pytest.raises(OriginalPaymentNotFound):
        booked(ledger, refund())
    assert ledger.rows == {} and ledger.postings == []


def test_ids_are_compared_exactly() -> None:
    ledger = FakeLedger()
    booked(ledger, charge(payment_id="Case-Pay-X"))
    assert booked(ledger, charge(payment_id="case-pay-X", amount_minor=5)).outcome is (
        Outcome.PROCESSED
    )
    with pytest.raises(OriginalPaymentNotFound):
        booked(ledger, refund(original_payment_id="CASE-PAY-X"))


@pytest.mark.parametrize(
    ("refund_changes", "code"),
    [
        ({"original_payment_id": "ref-1", "payment_id": "ref-2"}, "REFUND_OF_REFUND"),
        ({"currency": "EUR"}, "REFUND_CURRENCY_MISMATCH"),
        ({"customer_id": "cust-other"}, "REFUND_PARTY_MISMATCH"),
        ({"amount_minor": 9_001, "payment_id": "ref-3"}, "REFUND_EXCEEDS_CHARGE"),
    ],
)
def test_a_refused_refund_leaves_the_ledger_as_it_was(
    refund_changes: dict[str, Any], code: str
) -> None:
    ledger = FakeLedger()
    booked(ledger, charge())
    booked(ledger, refund())
    before = (dict(ledger.rows), list(ledger.postings))

    with pytest.raises(PaymentRejected) as refused:
        booked(ledger, refund(**{"payment_id": "ref-9", **refund_changes}))

    assert refused.value.code == code
    assert (ledger.rows, ledger.postings) == before


def test_a_redelivery_that_committed_while_waiting_for_the_lock_is_a_duplicate() -> None:
    """The refund's own row appears between the first read and the charge's lock (another
    delivery committed it): the answer is DUPLICATE, never REFUND_EXCEEDS_CHARGE."""
    ledger = FakeLedger()
    booked(ledger, charge())
    full = refund(amount_minor=10_000)
    booked(ledger, full)  # what the other delivery committed
    row_of_the_refund = ledger.rows["ref-1"]

    class RacingTransaction:
        def __init__(self, inner: Any) -> None:
            self.inner, self.reads = inner, 0

        def payment(self, payment_id: str, *, lock: bool = False) -> Any:
            self.reads += 1
            if payment_id == "ref-1" and self.reads == 1:
                return None  # the first read ran before the other delivery committed
            return self.inner.payment(payment_id, lock=lock)

        def add(self, *args: Any) -> None:
            raise AssertionError("nothing may be written")

        add_refunded = add

    result = ledger.run(
        lambda tx: book(
            RacingTransaction(tx), full, full.payload_hash(), processed_at=NOW, region="r"
        )
    )
    assert result.outcome is Outcome.DUPLICATE
    assert result.records[0] == row_of_the_refund
