"""The payment write path: validate, region gate, ledger (the commit point), sessions projection.

Every input ends in exactly one of the outcomes (a JSON list, a string or null too: REJECTED);
rejected and parked events are handed to the parking lot with their reason before the outcome is
returned, so nothing is dropped silently. Only transient failures raise (shared.errors.
TransientError), so Lambda and EventBridge deliver again; the ledger's primary key makes that
safe. Card numbers are looked for first, in the whole event: nothing read from an event that
carries one is logged or stored unmasked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payment_processor.booking import book
from payment_processor.models import InvalidEvent, PaymentDetail, event_age, parse_payment
from payment_processor.ports import LedgerStore, Outcome, ParkingLot, RegionGate, Sessions
from shared import card_data, metric_names
from shared.errors import (
    LedgerReadOnly,
    OriginalPaymentNotFound,
    PaymentRejected,
    RefundAwaitingCharge,
)
from shared.observability import MetricUnit, logger, metrics

# A publisher may set the event's `time` itself; this much of its clock running ahead is
# tolerated. Further ahead, the age cannot be trusted to grow past the refund window before
# Lambda's last attempt, so such a refund is parked at once (config.refund_charge_wait_seconds).
FUTURE_TOLERANCE_SECONDS = 30.0
_MAX_CLAIMED_ID = 64


@dataclass(frozen=True)
class Result:
    payment_id: str | None
    outcome: Outcome
    reason: str | None = None

    def as_response(self) -> dict[str, Any]:
        response: dict[str, Any] = {"payment_id": self.payment_id, "outcome": self.outcome.value}
        if self.outcome is not Outcome.PROCESSED:
            response["reason"] = self.reason
        return response


def claimed_payment_id(event: object) -> str | None:
    """The payment_id an event claims, safe to log and answer with before it is validated:
    card numbers masked (id rules), non-printable characters replaced, at most 64 characters."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    value = detail.get("payment_id") if isinstance(detail, Mapping) else None
    if not isinstance(value, str):
        return None
    masked = card_data.mask_text(value, id_field=True)[:_MAX_CLAIMED_ID]
    printable = "".join(c if c.isascii() and c.isprintable() else "?" for c in masked)
    return printable


class PaymentService:
    def __init__(
        self,
        *,
        ledger: LedgerStore,
        sessions: Sessions,
        region_gate: RegionGate,
        parking: ParkingLot,
        max_amount_minor: int,
        region: str,
        refund_charge_wait_seconds: float = 120.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ledger = ledger
        self._sessions = sessions
        self._region_gate = region_gate
        self._parking = parking
        self._max_amount_minor = max_amount_minor
        self._region = region
        self._refund_wait = refund_charge_wait_seconds
        self._clock = clock

    def handle(self, event: object) -> Result:
        payment, refusal = self._validate(event)
        if payment is None:
            assert refusal is not None
            return refusal
        if not self._region_gate.is_active():
            return self._set_aside(
                event,
                payment.payment_id,
                Outcome.PARKED,
                "REGION_PASSIVE",
                "this region is passive; parked for redrive after promotion",
            )
        payload_hash = payment.payload_hash()
        processed_at = self._clock()
        try:
            result = self._ledger.run(
                lambda tx: book(
                    tx, payment, payload_hash, processed_at=processed_at, region=self._region
                )
            )
        except LedgerReadOnly:
            return self._set_aside(
                event,
                payment.payment_id,
                Outcome.PARKED,
                "DATABASE_READ_ONLY",
                "the ledger database is read-only here; parked for redrive after promotion",
            )
        except OriginalPaymentNotFound as exc:
            return self._original_not_found(event, payment, exc)
        except PaymentRejected as exc:
            return self._set_aside(
                event, payment.payment_id, Outcome.REJECTED, exc.code, exc.message
            )
        if result.outcome is Outcome.CONFLICT:
            return self._set_aside(
                event,
                payment.payment_id,
                Outcome.CONFLICT,
                "CONFLICT",
                "payment_id already recorded with a different payload",
            )
        for record in result.records:
            self._sessions.project(record)
        if result.outcome is Outcome.DUPLICATE:
            return self._done(
                payment.payment_id,
                result.outcome,
                "DUPLICATE: already recorded with the same payload; nothing written again",
            )
        return self._done(payment.payment_id, result.outcome)

    def _validate(self, event: object) -> tuple[PaymentDetail | None, Result | None]:
        claimed_id = claimed_payment_id(event)
        if claimed_id is not None:
            logger.set_correlation_id(claimed_id)
        # The whole event, envelope included: a card number anywhere is refused before any of
        # it is read, logged or stored.
        pan_paths = card_data.pan_paths(event)
        if pan_paths:
            return None, self._set_aside(
                event,
                claimed_id,
                Outcome.REJECTED,
                "CARD_NUMBER_IN_EVENT",
                "a full card number is not allowed in a payment event "
                f"(found in {', '.join(pan_paths)})",
            )
        try:
            payment = parse_payment(event)
        except InvalidEvent as exc:
            return None, self._set_aside(
                event, claimed_id, Outcome.REJECTED, "INVALID_EVENT", exc.reason
            )
        logger.set_correlation_id(payment.payment_id)
        if payment.amount_minor > self._max_amount_minor:
            return None, self._set_aside(
                event,
                payment.payment_id,
                Outcome.REJECTED,
                "AMOUNT_ABOVE_MAXIMUM",
                f"amount_minor exceeds the configured maximum of {self._max_amount_minor}",
            )
        return payment, None

    def _original_not_found(
        self, event: object, payment: PaymentDetail, exc: OriginalPaymentNotFound
    ) -> Result:
        """A refund's charge is missing: it may be right behind (published at the same instant).
        Young: fail, so Lambda delivers it again. Old, or of unknown age: park it."""
        age = event_age(event, self._clock())
        seconds = None if age is None else age.total_seconds()
        if seconds is not None and -FUTURE_TOLERANCE_SECONDS <= seconds < self._refund_wait:
            metrics.add_metric(name="RefundAwaitingCharge", unit=MetricUnit.Count, value=1)
            logger.info(
                "refund's charge not in the ledger yet: failing the invocation to be retried",
                extra={"payment_id": payment.payment_id, "event_age_seconds": round(seconds, 1)},
            )
            raise RefundAwaitingCharge(
                f"charge not in the ledger yet; retried until the event is "
                f"{self._refund_wait:g} s old"
            )
        if seconds is None:
            why = "the event has no usable time, so it is not waited for"
        elif seconds < 0:
            why = "the event's time lies in the future, so it is not waited for"
        else:
            why = f"still missing {self._refund_wait:g} s after the event"
        return self._set_aside(
            event,
            payment.payment_id,
            Outcome.PARKED,
            exc.code,
            f"{exc.message}: {why}; parked for redrive",
        )

    def _set_aside(
        self, event: object, payment_id: str | None, outcome: Outcome, code: str, reason: str
    ) -> Result:
        # Reasons may quote the publisher's text (an unknown field's name): never a card number,
        # and only text every log sink can encode (a lone surrogate is escaped).
        reason = card_data.mask_text(reason).encode("utf-8", "backslashreplace").decode()
        self._parking.park(event, outcome=outcome, code=code, reason=reason)
        logger.warning(
            f"payment {outcome.value.lower()}: {code}",
            extra={
                "payment_id": payment_id,
                "outcome": outcome.value,
                "code": code,
                "reason": reason,
            },
        )
        return self._done(payment_id, outcome, f"{code}: {reason}")

    @staticmethod
    def _done(payment_id: str | None, outcome: Outcome, reason: str | None = None) -> Result:
        metrics.add_metric(
            name=metric_names.outcome_metric(outcome.value), unit=MetricUnit.Count, value=1
        )
        if outcome in (Outcome.PROCESSED, Outcome.DUPLICATE):
            logger.info(
                f"payment {outcome.value.lower()}",
                extra={"payment_id": payment_id, "outcome": outcome.value},
            )
        return Result(payment_id=payment_id, outcome=outcome, reason=reason)
