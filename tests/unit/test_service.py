"""PaymentService with fakes: every outcome, and what each leaves (or does not leave) behind."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_processor.ports import Outcome
from payment_processor.service import FUTURE_TOLERANCE_SECONDS, PaymentService
from shared.errors import RefundAwaitingCharge
from tests.conftest import ROOT, load_event
from tests.unit.fakes import FakeGate, FakeLedger, FakeParking, FakeSessions


@pytest.fixture
def parts() -> dict[str, Any]:
    return {
        "ledger": FakeLedger(),
        "sessions": FakeSessions(),
        "region_gate": FakeGate(),
        "parking": FakeParking(),
    }


@pytest.fixture
def service(parts: dict[str, Any]) -> PaymentService:
    return PaymentService(**parts, max_amount_minor=1_000_000, region="us-east-1")


def test_charge_then_duplicate(service: PaymentService, parts: dict[str, Any]) -> None:
    first = service.handle(load_event("01_charge_usd.json"))
    second = service.handle(load_event("06_duplicate_charge_usd.json"))

    assert first.as_response() == {"payment_id": "pay-usd-0001", "outcome": "PROCESSED"}
    assert second.outcome is Outcome.DUPLICATE
    assert list(parts["ledger"].rows) == ["pay-usd-0001"]
    assert parts["sessions"].items["pay-usd-0001"].amount_minor == 12550
    assert parts["parking"].parked == []


def test_conflict_is_parked_not_written(service: PaymentService, parts: dict[str, Any]) -> None:
    service.handle(load_event("01_charge_usd.json"))
    result = service.handle(load_event("07_conflict_charge_usd.json"))

    assert result.outcome is Outcome.CONFLICT
    assert parts["ledger"].rows["pay-usd-0001"].amount_minor == 12550
    assert [p["code"] for p in parts["parking"].parked] == ["CONFLICT"]


def test_refund_projects_the_charge_too(service: PaymentService, parts: dict[str, Any]) -> None:
    service.handle(load_event("01_charge_usd.json"))
    result = service.handle(load_event("05_refund_partial_usd.json"))

    assert result.outcome is Outcome.PROCESSED
    assert parts["sessions"].items["pay-usd-0001"].refunded_minor == 2550
    assert parts["sessions"].items["ref-usd-0001"].amount_minor == 2550


def test_over_refund_is_rejected_and_parked(service: PaymentService, parts: dict[str, Any]) -> None:
    service.handle(load_event("03_charge_bhd.json"))
    result = service.handle(load_event("08_over_refund_bhd.json"))

    assert result.outcome is Outcome.REJECTED
    assert result.reason is not None and result.reason.startswith("REFUND_EXCEEDS_CHARGE")
    assert "ref-bhd-0001" not in parts["ledger"].rows
    assert [p["code"] for p in parts["parking"].parked] == ["REFUND_EXCEEDS_CHARGE"]


def test_refund_before_its_charge_is_parked_for_redrive(
    service: PaymentService, parts: dict[str, Any]
) -> None:
    result = service.handle(load_event("04_refund_full_jpy.json"))

    assert result.outcome is Outcome.PARKED
    assert parts["ledger"].rows == {}
    assert [p["code"] for p in parts["parking"].parked] == ["ORIGINAL_NOT_FOUND"]


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("09_invalid_float_amount.json", "amount_minor"),
        ("10_invalid_negative_amount.json", "amount_minor"),
        ("11_invalid_unknown_currency.json", "currency"),
        ("12_invalid_missing_payment_id.json", "payment_id"),
    ],
)
def test_invalid_events_are_rejected_with_the_field_named(
    service: PaymentService, parts: dict[str, Any], name: str, field: str
) -> None:
    result = service.handle(load_event(name))

    assert result.outcome is Outcome.REJECTED
    assert result.reason is not None and field in result.reason
    assert parts["ledger"].rows == {} and parts["sessions"].items == {}
    assert len(parts["parking"].parked) == 1
    assert parts["parking"].parked[0]["code"] == "INVALID_EVENT"


def test_card_number_is_rejected_without_echoing_it(
    service: PaymentService, parts: dict[str, Any]
) -> None:
    result = service.handle(load_event("13_invalid_card_number_in_metadata.json"))

    assert result.outcome is Outcome.REJECTED
    assert result.reason is not None and "4111" not in result.reason
    assert parts["parking"].parked[0]["code"] == "CARD_NUMBER_IN_EVENT"
    assert parts["ledger"].rows == {}


def test_amount_above_maximum_is_rejected(service: PaymentService, parts: dict[str, Any]) -> None:
    event = load_event("01_charge_usd.json")
    event["detail"]["amount_minor"] = 1_000_001

    assert service.handle(event).outcome is Outcome.REJECTED
    assert parts["parking"].parked[0]["code"] == "AMOUNT_ABOVE_MAXIMUM"


def test_passive_region_parks_without_touching_the_ledger(
    service: PaymentService, parts: dict[str, Any]
) -> None:
    parts["region_gate"].active = False
    result = service.handle(load_event("01_charge_usd.json"))

    assert result.outcome is Outcome.PARKED
    assert parts["ledger"].rows == {}
    assert [p["code"] for p in parts["parking"].parked] == ["REGION_PASSIVE"]


def test_read_only_ledger_parks(service: PaymentService, parts: dict[str, Any]) -> None:
    parts["ledger"].read_only = True
    result = service.handle(load_event("01_charge_usd.json"))

    assert result.outcome is Outcome.PARKED
    assert [p["code"] for p in parts["parking"].parked] == ["DATABASE_READ_ONLY"]


def test_wrong_envelope_is_rejected(service: PaymentService, parts: dict[str, Any]) -> None:
    event = copy.deepcopy(load_event("01_charge_usd.json"))
    event["source"] = "someone.else"

    assert service.handle(event).outcome is Outcome.REJECTED
    assert parts["parking"].parked[0]["code"] == "INVALID_EVENT"


def test_parking_failure_fails_the_invocation(parts: dict[str, Any]) -> None:
    class BrokenParking:
        def park(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("queue down")

    parts["parking"] = BrokenParking()
    service = PaymentService(**parts, max_amount_minor=1_000_000, region="us-east-1")

    with pytest.raises(RuntimeError):
        service.handle(load_event("09_invalid_float_amount.json"))


# -- issue 7: a refund racing its charge, with a clock we move ---------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


EVENT_TIME = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)  # the samples' envelope time


@pytest.fixture
def clock() -> Clock:
    return Clock(EVENT_TIME + timedelta(seconds=5))


@pytest.fixture
def racing(parts: dict[str, Any], clock: Clock) -> PaymentService:
    return PaymentService(
        **parts,
        max_amount_minor=1_000_000,
        region="us-east-1",
        refund_charge_wait_seconds=120,
        clock=clock,
    )


def test_a_young_refund_without_its_charge_is_retried_not_parked(
    racing: PaymentService, parts: dict[str, Any], clock: Clock
) -> None:
    with pytest.raises(RefundAwaitingCharge):
        racing.handle(load_event("04_refund_full_jpy.json"))
    assert parts["parking"].parked == [] and parts["ledger"].rows == {}

    clock.now += timedelta(seconds=60)  # Lambda's first retry; the charge got in meanwhile
    racing.handle(load_event("02_charge_jpy.json"))
    assert racing.handle(load_event("04_refund_full_jpy.json")).outcome is Outcome.PROCESSED
    assert parts["parking"].parked == []


def test_lambdas_last_attempt_parks_a_refund_whose_charge_never_came(
    racing: PaymentService, parts: dict[str, Any], clock: Clock
) -> None:
    answers = []
    for wait in (0, 60, 120):  # Lambda: first attempt, +1 min, +2 min
        clock.now += timedelta(seconds=wait)
        try:
            answers.append(racing.handle(load_event("04_refund_full_jpy.json")).outcome)
        except RefundAwaitingCharge:
            answers.append("retry")
    assert answers == ["retry", "retry", Outcome.PARKED]
    [parked] = parts["parking"].parked
    assert parked["code"] == "ORIGINAL_NOT_FOUND"
    assert "120 s after the event" in parked["reason"]


@pytest.mark.parametrize(
    ("time", "why"),
    [
        (None, "no usable time"),
        ("not a time", "no usable time"),
        ("2026-11-28T10:01:00Z", "in the future"),  # 55 s ahead of the clock
    ],
)
def test_a_refund_of_unknown_or_future_age_is_parked_at_once(
    racing: PaymentService, parts: dict[str, Any], time: str | None, why: str
) -> None:
    event = load_event("04_refund_full_jpy.json")
    event["time"] = time
    assert racing.handle(event).outcome is Outcome.PARKED
    assert why in parts["parking"].parked[0]["reason"]


def test_a_publishers_clock_slightly_ahead_is_tolerated(
    racing: PaymentService, clock: Clock
) -> None:
    event = load_event("04_refund_full_jpy.json")
    event["time"] = (clock.now + timedelta(seconds=20)).isoformat()
    with pytest.raises(RefundAwaitingCharge):
        racing.handle(event)


def test_the_window_and_the_tolerance_fit_in_lambdas_retries() -> None:
    """Attempt 3 comes >= 180 s after attempt 1 (waits of 1 and 2 minutes). A refund the service
    waits on was first seen at an age >= -tolerance, so at attempt 3 it is >= 180 - tolerance
    old: the largest window allowed must not exceed that, or attempt 3 would fail it too."""
    import msgspec

    from shared.config import ProcessorSettings

    (wait,) = [f for f in msgspec.structs.fields(ProcessorSettings) if f.name.startswith("refund")]
    most = next(m.le for m in wait.type.__metadata__ if getattr(m, "le", None) is not None)
    assert most + FUTURE_TOLERANCE_SECONDS <= 60 + 120
    template = (ROOT / "template.yaml").read_text()
    assert "MaximumRetryAttempts: 2" in template
    assert f"MaxValue: {int(most)}" in template


# -- issue 7: the correlation id ----------------------------------------------------------------


def test_the_correlation_id_is_the_validated_payment_id(service: PaymentService) -> None:
    from shared.observability import logger

    service.handle(load_event("01_charge_usd.json"))
    assert logger.get_correlation_id() == "pay-usd-0001"


def test_a_card_number_in_the_payment_id_never_becomes_the_correlation_id(
    service: PaymentService,
) -> None:
    from shared.observability import logger

    event = load_event("01_charge_usd.json")
    event["detail"]["payment_id"] = "p-4012-8888-8888-1881"
    result = service.handle(event)

    assert result.outcome is Outcome.REJECTED
    assert result.payment_id == logger.get_correlation_id() == "p-[PAN REDACTED]"
