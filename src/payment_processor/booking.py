"""How a payment is booked: the refund rules, the double-entry postings, and the transaction that
applies them. Pure rules, plus one function (``book``) that drives a LedgerTransaction (ports.py):
the MySQL ledger and the tests' in-memory ledger both run exactly this code.

The transaction, in order: read the payment's row; if absent and a refund, lock its charge
(the store's SELECT ... FOR UPDATE), read the refund's own row again (a redelivery may have
committed while we waited for the lock: answer as for any existing payment, never as an
over-refund), check the refund rules against the charge, then write the payment, its postings
and the charge's new refunded total. The store commits, or rolls back when this raises.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from payment_processor.models import PaymentDetail, PaymentType
from payment_processor.ports import LedgerResult, LedgerTransaction
from shared.errors import OriginalPaymentNotFound, PaymentRejected
from shared.records import Outcome, PaymentRecord, Posting


def postings(payment: PaymentDetail) -> tuple[Posting, Posting]:
    """Balanced entries: a charge moves value from the customer to the merchant, a refund back."""
    sign = 1 if payment.type is PaymentType.CHARGE else -1
    return (
        Posting(
            payment.payment_id,
            f"merchant:{payment.merchant_id}",
            sign * payment.amount_minor,
            payment.currency,
        ),
        Posting(
            payment.payment_id,
            f"customer:{payment.customer_id}",
            -sign * payment.amount_minor,
            payment.currency,
        ),
    )


def check_refund(charge: PaymentRecord, refund: PaymentDetail) -> None:
    """Raises PaymentRejected (with its code) unless ``refund`` may be booked against ``charge``
    as it stands (``charge`` read under its lock)."""
    if charge.type != PaymentType.CHARGE.value:
        raise PaymentRejected("REFUND_OF_REFUND", "only a CHARGE can be refunded")
    if charge.currency != refund.currency:
        raise PaymentRejected(
            "REFUND_CURRENCY_MISMATCH", "refund currency differs from the charge's"
        )
    if (charge.merchant_id, charge.customer_id) != (refund.merchant_id, refund.customer_id):
        raise PaymentRejected(
            "REFUND_PARTY_MISMATCH", "refund merchant/customer differ from the charge's"
        )
    left = charge.amount_minor - charge.refunded_minor
    if refund.amount_minor > left:
        raise PaymentRejected(
            "REFUND_EXCEEDS_CHARGE",
            f"refund of {refund.amount_minor} exceeds the {left} left to refund on the charge",
        )


def new_record(
    payment: PaymentDetail, payload_hash: str, *, processed_at: datetime, region: str
) -> PaymentRecord:
    return PaymentRecord(
        payment_id=payment.payment_id,
        type=payment.type.value,
        original_payment_id=payment.original_payment_id,
        merchant_id=payment.merchant_id,
        customer_id=payment.customer_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        occurred_at=payment.occurred_at,
        processed_at=processed_at,
        processed_region=region,
        payload_hash=payload_hash,
        refunded_minor=0,
    )


def answer_existing(
    tx: LedgerTransaction, existing: PaymentRecord, payload_hash: str
) -> LedgerResult:
    """The answer for a payment_id the ledger already holds: the same payload is a DUPLICATE
    (re-projected, with its charge: a crash may have stopped the first projection), another
    payload a CONFLICT."""
    if existing.payload_hash != payload_hash:
        return LedgerResult(outcome=Outcome.CONFLICT)
    records = [existing]
    if existing.original_payment_id is not None:
        charge = tx.payment(existing.original_payment_id)
        if charge is not None:
            records.append(charge)
    return LedgerResult(outcome=Outcome.DUPLICATE, records=tuple(records))


def book(
    tx: LedgerTransaction,
    payment: PaymentDetail,
    payload_hash: str,
    *,
    processed_at: datetime,
    region: str,
) -> LedgerResult:
    """Book ``payment`` once in ``tx`` (see the module docstring), or say why not: raises
    OriginalPaymentNotFound or PaymentRejected, after which the store rolls back."""
    existing = tx.payment(payment.payment_id)
    if existing is not None:
        return answer_existing(tx, existing, payload_hash)

    charge: PaymentRecord | None = None
    if payment.type is PaymentType.REFUND:
        charge = tx.payment(payment.original_payment_id or "", lock=True)
        if charge is None:
            raise OriginalPaymentNotFound(
                "ORIGINAL_NOT_FOUND", "the refunded payment is not in the ledger (yet)"
            )
        # Plain read, not a locking one: a gap lock on a new id would let refunds of different
        # charges deadlock on their inserts. Under READ COMMITTED it sees a committed twin.
        twin = tx.payment(payment.payment_id)
        if twin is not None:
            return answer_existing(tx, twin, payload_hash)
        check_refund(charge, payment)

    record = new_record(payment, payload_hash, processed_at=processed_at, region=region)
    tx.add(record, postings(payment))
    if charge is None:
        return LedgerResult(outcome=Outcome.PROCESSED, records=(record,))
    tx.add_refunded(charge.payment_id, payment.amount_minor)
    refunded = replace(charge, refunded_minor=charge.refunded_minor + payment.amount_minor)
    return LedgerResult(outcome=Outcome.PROCESSED, records=(record, refunded))
