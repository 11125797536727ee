"""PaymentService with fakes: every outcome, and what each leaves (or does not leave) behind."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from payment_processor.ports import Outcome
from payment_processor.service import PaymentService
from tests.conftest import load_event
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
