"""In-memory stand-ins for the service's ports. The fake ledger is only storage: the booking rules
it runs are payment_processor.booking's, the same code the MySQL ledger runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from payment_processor.ports import Outcome, PaymentRecord, Posting
from shared.errors import LedgerReadOnly

T = TypeVar("T")


@dataclass
class _FakeTransaction:
    rows: dict[str, PaymentRecord]
    postings: list[Posting]
    read_only: bool

    def payment(self, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
        return self.rows.get(payment_id)  # dict keys compare exactly, as the binary columns do

    def add(self, record: PaymentRecord, postings: Sequence[Posting]) -> None:
        self._writable()
        if record.payment_id in self.rows:
            raise AssertionError(f"duplicate key {record.payment_id}: booking must read first")
        self.rows[record.payment_id] = record
        self.postings.extend(postings)

    def add_refunded(self, payment_id: str, amount_minor: int) -> None:
        self._writable()
        charge = self.rows[payment_id]
        refunded = charge.refunded_minor + amount_minor
        if refunded > charge.amount_minor:  # the CHECK constraint of the real table
            raise AssertionError(f"refunded_minor would pass amount_minor on {payment_id}")
        self.rows[payment_id] = replace(charge, refunded_minor=refunded)

    def _writable(self) -> None:
        if self.read_only:
            raise LedgerReadOnly()


@dataclass
class FakeLedger:
    """A LedgerStore in memory: a transaction works on a copy, kept only if the work returns."""

    rows: dict[str, PaymentRecord] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)
    read_only: bool = False

    def run(self, work: Callable[[_FakeTransaction], T]) -> T:
        tx = _FakeTransaction(dict(self.rows), list(self.postings), self.read_only)
        result = work(tx)
        self.rows, self.postings = tx.rows, tx.postings
        return result


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
