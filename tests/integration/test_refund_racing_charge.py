"""A refund published at the same instant as its charge can reach the ledger first. While the event
is young (its EventBridge `time`), a missing charge is a transient failure, so Lambda delivers it
again; once the window has passed it is parked with its reason. Never both: an event is either
processed on a redelivery or parked, once.

Lambda's asynchronous retries come about one minute and then two minutes after a failed attempt
(template.yaml: MaximumRetryAttempts 2). A redelivery is the same event later, so each attempt
here is the same event with its `time` moved back by how long Lambda would have waited."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_processor.handler import lambda_handler, process
from payment_processor.wiring import build_service
from shared.config import get_processor_settings
from shared.errors import TransientError
from tests.conftest import ledger_rows
from tests.integration.scenario import DELETE, charge, iso, refund

pytestmark = pytest.mark.integration

# Event age at each of Lambda's three attempts: published, +1 min, +2 min more.
ATTEMPT_AGES = (5, 65, 185)


def at_age(built: dict[str, Any], seconds: float) -> dict[str, Any]:
    again = copy.deepcopy(built)
    again["time"] = iso(datetime.now(UTC) - timedelta(seconds=seconds))
    return again


def test_a_refund_that_overtakes_its_charge_is_processed_on_redelivery(
    sandbox: Any, lambda_context: Any
) -> None:
    early = refund("ref-race-1", "pay-race-1", 500, age_seconds=ATTEMPT_AGES[0])
    with pytest.raises(TransientError):
        lambda_handler(early, lambda_context)
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sandbox.parked() == []

    assert lambda_handler(charge("pay-race-1"), lambda_context)["outcome"] == "PROCESSED"
    answer = lambda_handler(at_age(early, ATTEMPT_AGES[1]), lambda_context)

    assert answer == {"payment_id": "ref-race-1", "outcome": "PROCESSED"}
    assert ledger_rows(
        sandbox.mariadb, "SELECT payment_id, refunded_minor FROM payments ORDER BY payment_id"
    ) == [("pay-race-1", 500), ("ref-race-1", 0)]
    assert sandbox.parked() == []


def test_a_refund_whose_charge_never_comes_is_parked_by_the_last_attempt(
    sandbox: Any, lambda_context: Any
) -> None:
    early = refund("ref-race-2", "pay-race-never", 500)
    answers: list[str] = []
    for age in ATTEMPT_AGES:
        try:
            answers.append(lambda_handler(at_age(early, age), lambda_context)["outcome"])
        except TransientError:
            answers.append("retry")

    assert answers == ["retry", "retry", "PARKED"]
    (parked,) = sandbox.parked()
    assert (parked["outcome"], parked["code"]) == ("PARKED", "ORIGINAL_NOT_FOUND")
    assert parked["event"]["id"] == early["id"]
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]


@pytest.mark.parametrize(
    "time",
    [DELETE, None, "", "yesterday", 1764323998, "2026-13-45T00:00:00Z", "2026-11-28T10:00:00"],
)
def test_a_refund_without_a_usable_event_time_is_parked_at_once(
    sandbox: Any, lambda_context: Any, time: Any
) -> None:
    """No age to judge by: parking beats failing every attempt into the failure destination."""
    built = refund("ref-race-3", "pay-race-never", 500)
    if time is DELETE:
        del built["time"]
    else:
        built["time"] = time

    answer = lambda_handler(built, lambda_context)

    assert answer["outcome"] == "PARKED"
    assert answer["reason"].startswith("ORIGINAL_NOT_FOUND")
    assert [m["code"] for m in sandbox.parked()] == ["ORIGINAL_NOT_FOUND"]


def test_a_refund_dated_in_the_future_is_parked_at_once(sandbox: Any, lambda_context: Any) -> None:
    """A publisher may set `time` itself; one far in the future would keep the event young
    through every attempt."""
    built = refund("ref-race-4", "pay-race-never", 500, age_seconds=-3600)
    answer = lambda_handler(built, lambda_context)
    assert answer["outcome"] == "PARKED"
    assert [m["code"] for m in sandbox.parked()] == ["ORIGINAL_NOT_FOUND"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("charge_arrives_after_attempt", [None, 1, 2])
def test_lambdas_three_attempts_on_the_real_adapters(
    sandbox: Any, lambda_context: Any, charge_arrives_after_attempt: int | None
) -> None:
    """Lambda's asynchronous invocation as it happens (template.yaml: MaximumRetryAttempts 2,
    waits of ~1 and ~2 minutes), the clock moved instead of waited: the refund is processed on
    the attempt after its charge arrives, or parked by the last attempt, never both and never
    in the failure destination."""
    event_time = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
    clock = Clock(event_time + timedelta(seconds=2))
    service = build_service(get_processor_settings(), clock=clock)
    early = refund("ref-race-5", "pay-race-5", 500)
    early["time"] = iso(event_time)
    answers: list[str] = []
    for attempt, wait in enumerate((0, 60, 120), start=1):
        clock.now += timedelta(seconds=wait)
        try:
            answers.append(process(early, lambda_context, service=service)["outcome"])
            break
        except TransientError:
            answers.append("retry")
        if attempt == charge_arrives_after_attempt:
            assert lambda_handler(charge("pay-race-5"), lambda_context)["outcome"] == "PROCESSED"

    parked = sandbox.parked()
    if charge_arrives_after_attempt is None:
        assert answers == ["retry", "retry", "PARKED"]
        assert [(m["outcome"], m["code"]) for m in parked] == [("PARKED", "ORIGINAL_NOT_FOUND")]
        assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    else:
        assert answers == ["retry"] * charge_arrives_after_attempt + ["PROCESSED"]
        assert parked == []
        assert ledger_rows(
            sandbox.mariadb, "SELECT refunded_minor FROM payments WHERE payment_id = 'pay-race-5'"
        ) == [(500,)]
