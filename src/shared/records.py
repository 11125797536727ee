"""The records the write path hands between the domain and the adapters: plain data, no rules.

They live in shared, not in payment_processor, because the adapters read and write them (the SQL
ledger stores PaymentRecord and Posting rows, the sessions table projects PaymentRecord, the
parking lot labels messages with an Outcome) and adapters must not import the domain. The rules
that make these records (postings, refund checks) are in payment_processor.booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    PROCESSED = "PROCESSED"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    REJECTED = "REJECTED"
    PARKED = "PARKED"


@dataclass(frozen=True)
class PaymentRecord:
    """A payment as the ledger holds it (one ``payments`` row): the truth the sessions item
    projects."""

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
class Posting:
    """One ``ledger_entries`` row: a signed amount on an account. A payment's postings sum to 0
    per currency."""

    payment_id: str
    account: str
    amount_minor: int
    currency: str
