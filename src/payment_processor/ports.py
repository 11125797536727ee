"""What the payment service needs from the outside world. Adapters in shared/adapters implement
these; tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from payment_processor.models import PaymentDetail


class Outcome(StrEnum):
    PROCESSED = "PROCESSED"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    REJECTED = "REJECTED"
    PARKED = "PARKED"


@dataclass(frozen=True)
class PaymentRecord:
    """A payment as the ledger holds it: the truth the sessions item projects."""

    payment_id: str
    type: str
    original_payment_id: str | None
    merchant_id: str
    customer_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    processed_at: datetime
    processed_region: str
    payload_hash: str
    refunded_minor: int


@dataclass(frozen=True)
class LedgerResult:
    outcome: Outcome  # PROCESSED, DUPLICATE or CONFLICT
    # Rows to project into the sessions table: the payment itself and, for a refund, its charge
    # as it stands after the refund. Empty for CONFLICT.
    records: tuple[PaymentRecord, ...] = ()


class Ledger(Protocol):
    def record(self, payment: PaymentDetail, payload_hash: str) -> LedgerResult:
        """Write the payment and its balanced entries once, atomically, or say why not.

        Raises LedgerReadOnly, PaymentRejected (incl. OriginalPaymentNotFound) or
        LedgerUnavailable."""
        ...


class Sessions(Protocol):
    def project(self, record: PaymentRecord) -> None:
        """Upsert the replicated state of a payment; never lets an older state win."""
        ...


class RegionGate(Protocol):
    def is_active(self) -> bool: ...


class ParkingLot(Protocol):
    def park(self, event: Any, *, outcome: Outcome, code: str, reason: str) -> None:
        """Keep the event (card data masked) with its reason, for a human to see and redrive."""
        ...
