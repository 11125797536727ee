"""In-memory stand-ins for the service's ports, with the same rules as the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from payment_processor.models import PaymentDetail, PaymentType
from payment_processor.ports import LedgerResult, Outcome, PaymentRecord
from shared.errors import LedgerReadOnly, OriginalPaymentNotFound, PaymentRejected


@dataclass
class FakeLedger:
    rows: dict[str, PaymentRecord] = field(default_factory=dict)
    read_only: bool = False

    def record(self, payment: PaymentDetail, payload_hash: str) -> LedgerResult:
        existing = self.rows.get(payment.payment_id)
        if existing is not None:
            if existing.payload_hash != payload_hash:
                return LedgerResult(Outcome.CONFLICT)
            extra = (
                [self.rows[existing.original_payment_id]] if existing.original_payment_id else []
            )
            return LedgerResult(Outcome.DUPLICATE, (existing, *extra))
        if self.read_only:
            raise LedgerReadOnly()
        new = PaymentRecord(
            payment.payment_id,
            payment.type.value,
            payment.original_payment_id,
            payment.merchant_id,
            payment.customer_id,
            payment.amount_minor,
            payment.currency,
            payment.occurred_at,
            datetime.now(UTC),
            "us-east-1",
            payload_hash,
            0,
        )
        if payment.type is PaymentType.REFUND:
            original = self.rows.get(payment.original_payment_id or "")
            if original is None:
                raise OriginalPaymentNotFound("ORIGINAL_NOT_FOUND", "not in the ledger")
            if original.refunded_minor + payment.amount_minor > original.amount_minor:
                raise PaymentRejected("REFUND_EXCEEDS_CHARGE", "too much")
            original = replace(
                original, refunded_minor=original.refunded_minor + payment.amount_minor
            )
            self.rows[original.payment_id] = original
            self.rows[new.payment_id] = new
            return LedgerResult(Outcome.PROCESSED, (new, original))
        self.rows[new.payment_id] = new
        return LedgerResult(Outcome.PROCESSED, (new,))


@dataclass
class FakeSessions:
    items: dict[str, PaymentRecord] = field(default_factory=dict)

    def project(self, record: PaymentRecord) -> None:
        current = self.items.get(record.payment_id)
        if current is None or current.refunded_minor < record.refunded_minor:
            self.items[record.payment_id] = record


@dataclass
class FakeGate:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class FakeParking:
    parked: list[dict[str, Any]] = field(default_factory=list)

    def park(self, event: Any, *, outcome: Outcome, code: str, reason: str) -> None:
        self.parked.append({"event": event, "outcome": outcome, "code": code, "reason": reason})
