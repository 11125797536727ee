"""The drill's producer: a steady stream of payments through the EventBridge global endpoint,
and the ground truth every figure of the report is checked against.

Charges in four currencies (exponents 0, 2 and 3), refunds of earlier charges (never more than
what is left of the charge), a few invalid events (they must be rejected, never written), some
payments sent again unchanged (they must be answered DUPLICATE, never written twice). A send
the global endpoint does not accept (the region behind it is dead) is retried until it is, as
a producer's SDK and outbox would: payments are delayed, never dropped by the producer.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

CURRENCIES = ("USD", "EUR", "JPY", "BHD")
RETRY_PAUSE = 0.1


class Endpoint(Protocol):
    def put(self, detail: dict[str, Any]) -> str | None: ...


@dataclass
class Mix:
    refunds: float = 0.2
    invalid: float = 0.015
    resends: float = 0.05  # the producer sends an earlier payment again, unchanged
    card: float = 0.3  # carries {brand, last4}: reconcile cannot rebuild these, redrive can


@dataclass
class Payment:
    payment_id: str
    type: str
    currency: str
    amount_minor: int
    valid: bool
    original: str | None
    detail: dict[str, Any]
    scenario: str
    first_sent_at: float = 0.0
    accepted_at: float = 0.0
    accepted_region: str = ""
    attempts: int = 0
    resends: int = 0


@dataclass
class Send:
    at: float
    payment_id: str
    region: str
    resend: bool


@dataclass
class PaymentStream:
    endpoint: Endpoint
    rng: random.Random
    rate: float  # payments per second
    run_id: str
    mix: Mix = field(default_factory=Mix)
    scenario: str = "warm-up"
    payments: dict[str, Payment] = field(default_factory=dict)
    sends: list[Send] = field(default_factory=list)
    _remaining: dict[str, int] = field(default_factory=dict)  # charge -> refundable amount
    _sequence: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PaymentStream:
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def sent(self) -> int:
        with self._lock:
            return sum(1 for p in self.payments.values() if p.accepted_at)

    def wait_sent(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.sent() < count:
            if time.monotonic() > deadline or self._stop.is_set():
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        gap = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._one()
            next_at = max(next_at + gap, time.monotonic() - gap)  # steady, no catch-up bursts
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self) -> None:
        with self._lock:
            accepted = [p for p in self.payments.values() if p.accepted_at]
        if accepted and self.rng.random() < self.mix.resends:
            self._send(self.rng.choice(accepted), resend=True)
            return
        self._send(self._new(), resend=False)

    def _new(self) -> Payment:
        self._sequence += 1
        payment_id = f"drill-{self.run_id}-{self._sequence:05d}"
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        roll = self.rng.random()
        refundable = [c for c, left in self._remaining.items() if left > 0]
        detail: dict[str, Any] = {
            "schema_version": "1.0",
            "payment_id": payment_id,
            "merchant_id": f"m-drill-{self.rng.randint(1, 20):02d}",
            "customer_id": f"c-drill-{self.rng.randint(1, 500):03d}",
            "occurred_at": now,
        }
        if roll < self.mix.invalid:
            detail.update(type="CHARGE", amount_minor=-self.rng.randint(1, 500), currency="USD")
            return self._made(payment_id, detail, valid=False)
        if roll < self.mix.invalid + self.mix.refunds and refundable:
            original = self.rng.choice(refundable)
            charge = self.payments[original]
            amount = self.rng.randint(1, self._remaining[original])
            self._remaining[original] -= amount
            detail.update(
                type="REFUND",
                original_payment_id=original,
                amount_minor=amount,
                currency=charge.currency,
                merchant_id=charge.detail["merchant_id"],  # a refund goes back the same way
                customer_id=charge.detail["customer_id"],
            )
            return self._made(payment_id, detail, valid=True)
        currency = self.rng.choice(CURRENCIES)
        amount = self.rng.randint(100, 50_000)
        detail.update(type="CHARGE", amount_minor=amount, currency=currency)
        if self.rng.random() < self.mix.card:
            detail["card"] = {"brand": "VISA", "last4": f"{self.rng.randint(0, 9999):04d}"}
        self._remaining[payment_id] = amount
        return self._made(payment_id, detail, valid=True)

    def _made(self, payment_id: str, detail: dict[str, Any], *, valid: bool) -> Payment:
        payment = Payment(
            payment_id=payment_id,
            type=str(detail["type"]),
            currency=str(detail["currency"]),
            amount_minor=int(detail["amount_minor"]),
            valid=valid,
            original=detail.get("original_payment_id"),
            detail=detail,
            scenario=self.scenario,
        )
        with self._lock:
            self.payments[payment_id] = payment
        return payment

    def _send(self, payment: Payment, *, resend: bool) -> None:
        """Until the global endpoint accepts it (or the stream is stopped)."""
        if not resend:
            payment.first_sent_at = time.time()
        while not self._stop.is_set():
            payment.attempts += 1
            region = self.endpoint.put(payment.detail)
            if region is not None:
                now = time.time()
                with self._lock:
                    if resend:
                        payment.resends += 1
                    else:
                        payment.accepted_at, payment.accepted_region = now, region
                    self.sends.append(Send(now, payment.payment_id, region, resend))
                return
            self._stop.wait(RETRY_PAUSE)
