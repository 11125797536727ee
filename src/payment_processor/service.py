"""The payment write path: validate, region gate, ledger (the commit point), sessions projection.

Every path ends in exactly one of the outcomes; rejected and parked events are handed to the
parking lot with their reason before the outcome is returned, so nothing is dropped silently.
Transient failures raise (shared.errors.TransientError) so Lambda and EventBridge deliver again;
the ledger's primary key makes that safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payment_processor.models import InvalidEvent, PaymentDetail, parse_payment
from payment_processor.ports import Ledger, Outcome, ParkingLot, RegionGate, Sessions
from shared import card_data
from shared.errors import LedgerReadOnly, OriginalPaymentNotFound, PaymentRejected
from shared.observability import MetricUnit, logger, metrics


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


def _claimed_payment_id(event: Mapping[str, Any]) -> str | None:
    detail = event.get("detail") if isinstance(event, Mapping) else None
    value = detail.get("payment_id") if isinstance(detail, Mapping) else None
    return card_data.mask_text(value)[:64] if isinstance(value, str) else None


class PaymentService:
    def __init__(
        self,
        *,
        ledger: Ledger,
        sessions: Sessions,
        region_gate: RegionGate,
        parking: ParkingLot,
        max_amount_minor: int,
    ) -> None:
        self._ledger = ledger
        self._sessions = sessions
        self._region_gate = region_gate
        self._parking = parking
        self._max_amount_minor = max_amount_minor

    def handle(self, event: Mapping[str, Any]) -> Result:
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
        try:
            result = self._ledger.record(payment, payment.payload_hash())
        except LedgerReadOnly:
            return self._set_aside(
                event,
                payment.payment_id,
                Outcome.PARKED,
                "DATABASE_READ_ONLY",
                "the ledger database is read-only here; parked for redrive after promotion",
            )
        except OriginalPaymentNotFound as exc:
            return self._set_aside(event, payment.payment_id, Outcome.PARKED, exc.code, exc.message)
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

    def _validate(self, event: Mapping[str, Any]) -> tuple[PaymentDetail | None, Result | None]:
        claimed_id = _claimed_payment_id(event)
        # The detail is the publisher's payload; the envelope (ids, resources) is EventBridge's.
        pan_paths = card_data.pan_paths(event.get("detail"))
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
                event,
                claimed_id,
                Outcome.REJECTED,
                "INVALID_EVENT",
                # Masked as well: the envelope is not scanned for card numbers above.
                card_data.mask_text(exc.reason),
            )
        if payment.amount_minor > self._max_amount_minor:
            return None, self._set_aside(
                event,
                payment.payment_id,
                Outcome.REJECTED,
                "AMOUNT_ABOVE_MAXIMUM",
                f"amount_minor exceeds the configured maximum of {self._max_amount_minor}",
            )
        return payment, None

    def _set_aside(
        self, event: Any, payment_id: str | None, outcome: Outcome, code: str, reason: str
    ) -> Result:
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
        metrics.add_metric(name=f"Payment{outcome.value.title()}", unit=MetricUnit.Count, value=1)
        if outcome in (Outcome.PROCESSED, Outcome.DUPLICATE):
            logger.info(
                f"payment {outcome.value.lower()}",
                extra={"payment_id": payment_id, "outcome": outcome.value},
            )
        return Result(payment_id=payment_id, outcome=outcome, reason=reason)
