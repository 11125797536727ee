"""What the payment service needs from the outside world. Adapters in shared/adapters implement
these (structurally: they do not import this module); tests pass fakes.

The records exchanged with the adapters (Outcome, PaymentRecord, Posting) are defined in
shared.records, which adapters may import; they are re-exported here for the domain's use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.records import Outcome, PaymentRecord, Posting

__all__ = [
    "LedgerResult",
    "LedgerStore",
    "LedgerTransaction",
    "Outcome",
    "ParkingLot",
    "PaymentRecord",
    "Posting",
    "RegionGate",
    "Sessions",
]


@dataclass(frozen=True)
class LedgerResult:
    outcome: Outcome  # PROCESSED, DUPLICATE or CONFLICT
    # Rows to project into the sessions table: the payment itself and, for a refund, its charge
    # as it stands after the refund. Empty for CONFLICT.
    records: tuple[PaymentRecord, ...] = ()


class LedgerTransaction(Protocol):
    """One open ledger transaction (READ COMMITTED), as payment_processor.booking drives it."""

    def payment(self, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
        """The payment's row, compared byte for byte; ``lock`` holds it until the end of the
        transaction (SELECT ... FOR UPDATE)."""
        ...

    def add(self, record: PaymentRecord, postings: Sequence[Posting]) -> None:
        """Insert the payment row and its postings. A concurrent insert of the same payment_id
        makes the store run the whole transaction again (it then reads that row)."""
        ...

    def add_refunded(self, payment_id: str, amount_minor: int) -> None:
        """Grow a (locked) charge's refunded total."""
        ...


class LedgerStore(Protocol):
    def run[T](self, work: Callable[[LedgerTransaction], T]) -> T:
        """Run ``work`` in one transaction and commit it; what ``work`` raises rolls it back and
        propagates. A duplicate key, a deadlock or a lost connection (a lost COMMIT answer too)
        runs ``work`` again from the start, on a fresh connection if needed, while the
        invocation's deadline allows.

        Raises LedgerReadOnly (the database refuses writes: not the writer region) or a
        TransientError (LedgerUnavailable, DeadlineExceeded)."""
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
