"""A throttling storm: 1,000 events (charges, redeliveries, refunds) while 30% of all DynamoDB HTTP
requests are answered ProvisionedThroughputExceededException. botocore's standard retries
(WRITE_PATH_CONFIG, as in production, real backoff sleeps), the deadline hook and Lambda's async
retry must carry every event through: nothing lost, nothing applied twice.

Lambda runs many execution environments at once; so does this test (worker threads, each its own
clients and ledger connection), which is also what keeps the real backoff sleeps affordable.
"""

from __future__ import annotations

import queue
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from payment_processor.models import CURRENCY_EXPONENTS
from shared.adapters.aws import WRITE_PATH_CONFIG
from shared.config import get_processor_settings
from tests.integration.fault_injection import (
    ACCEPTED,
    Delivery,
    Environment,
    Throttle,
    build_environment,
    check_deliveries,
    check_ledger,
    check_no_phantom_rows,
    check_sessions_agree,
    deliver,
    in_flight,
    new_event,
    payload_hash,
    serialise_metrics,
    serialise_moto,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 1_000
THROTTLED_FRACTION = 0.3
WORKERS = 32  # concurrent execution environments
CURRENCIES = ("USD", "EUR", "JPY", "BHD")


def storm_events(rng: random.Random) -> list[dict[str, Any]]:
    """~55% new charges, ~25% redeliveries of an earlier event (new id, same detail), ~20%
    refunds (partial, full or over) of an earlier charge; each refund id used once."""
    charges: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for n in range(EVENTS):
        roll = rng.random()
        if roll < 0.25 and details:
            details.append(rng.choice(details))
        elif roll < 0.45 and charges:
            charge = rng.choice(charges)
            amount = rng.choice(
                [charge["amount_minor"] // 3, charge["amount_minor"], charge["amount_minor"] + 1]
            )
            details.append(
                {**charge, "payment_id": f"rf-{n:04d}", "type": "REFUND", "amount_minor": amount}
                | {"original_payment_id": charge["payment_id"]}
            )
        else:
            currency = rng.choice(CURRENCIES)
            charge = {
                "schema_version": "1.0",
                "payment_id": f"ch-{n:04d}",
                "type": "CHARGE",
                "merchant_id": f"m-{rng.randrange(5)}",
                "customer_id": f"cu-{rng.randrange(50)}",
                "amount_minor": rng.randrange(1, 10_000) * 10 ** CURRENCY_EXPONENTS[currency],
                "currency": currency,
                "occurred_at": "2026-11-28T09:59:58Z",
            }
            charges.append(charge)
            details.append(charge)
    return [new_event(detail) for detail in details]


def _work(env: Environment, inbox: queue.Queue[dict[str, Any] | None]) -> list[Delivery]:
    done = []
    while (event := inbox.get()) is not None:
        done.append(deliver(env, event))
    return done


def test_throttle_storm_loses_nothing_and_applies_nothing_twice(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, record_property: Any, capsys: Any
) -> None:
    serialise_moto(monkeypatch)
    serialise_metrics(monkeypatch)
    settings = get_processor_settings()
    throttle = Throttle(rate=THROTTLED_FRACTION, seed=20261128)
    envs = [build_environment(settings, sandbox.mariadb, throttle) for _ in range(WORKERS)]
    # Production's retry policy, unweakened.
    assert envs[0].dynamodb.meta.config.retries == WRITE_PATH_CONFIG.retries
    assert WRITE_PATH_CONFIG.retries["mode"] == "standard"
    events = storm_events(random.Random(7))
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    for event in events:
        inbox.put(event)
    for _ in envs:
        inbox.put(None)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        deliveries = [d for f in [pool.submit(_work, e, inbox) for e in envs] for d in f.result()]
    storm_seconds = time.monotonic() - started
    assert len(deliveries) == EVENTS

    # Refunds that overtook their charge on another worker were parked ORIGINAL_NOT_FOUND, and
    # events whose retries ran out sit in the failure destination: `drctl redrive` sends both
    # again (with the storm still on), as an operator would.
    parked = sandbox.parked()
    rows = check_ledger(sandbox.mariadb)
    check_deliveries(deliveries, parked, rows)
    check_sessions_agree(sandbox, rows, pending=in_flight(deliveries))
    failed = [d for d in deliveries if d.response is None]
    reinvocations = Counter(type(e).__name__ for d in deliveries for e in d.errors)
    waiting = {m["event"]["id"] for m in parked if m["code"] == "ORIGINAL_NOT_FOUND"}
    redrive = [d for d in deliveries if d.response is None or d.event_id in waiting]
    parked = [m for m in parked if m["event"]["id"] not in waiting]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for start in range(0, len(redrive), WORKERS):  # one event per environment at a time
            batch = redrive[start : start + WORKERS]
            agains = list(pool.map(deliver, envs[: len(batch)], [d.event for d in batch]))
            for delivery, again in zip(batch, agains, strict=True):
                assert again.response is not None, f"redrive failed too: {again.errors!r}"
                delivery.response, delivery.errors, delivery.redriven = again.response, [], True
    parked += sandbox.parked()

    rows = check_ledger(sandbox.mariadb)
    check_deliveries(deliveries, parked, rows)
    check_no_phantom_rows(deliveries, rows)
    check_sessions_agree(sandbox, rows)
    # Nothing lost: every charge and every refund that fits its charge is in the ledger.
    for delivery in deliveries:
        detail = delivery.event["detail"]
        if delivery.outcome != "REJECTED":
            assert rows[detail["payment_id"]].payload_hash == payload_hash(detail)
        else:
            assert delivery.response is not None
            assert delivery.response["reason"].startswith("REFUND_EXCEEDS_CHARGE"), delivery
    # Nothing twice: one row per accepted payment (check_deliveries: at most one PROCESSED
    # answer each; a retry after a post-commit failure answers DUPLICATE).
    accepted = {d.event["detail"]["payment_id"] for d in deliveries if d.outcome in ACCEPTED}
    assert set(rows) == accepted
    outcomes = Counter(d.outcome for d in deliveries)

    summary = (
        f"throttle storm: {EVENTS} events, {WORKERS} environments, {storm_seconds:.1f}s; "
        f"DynamoDB {throttle.calls} calls took {throttle.http_attempts} HTTP attempts "
        f"({throttle.throttled} throttled, {throttle.throttled / throttle.http_attempts:.0%}; "
        f"most for one call {throttle.most_attempts_for_one_call}); "
        f"Lambda re-invocations {sum(reinvocations.values())} {dict(reinvocations)}, "
        f"failure destination {len(failed)}, parked-then-redriven {len(waiting)}; "
        f"outcomes {dict(sorted(outcomes.items()))}; lost 0, applied twice 0"
    )
    record_property("throttle_storm", summary)
    with capsys.disabled():
        print(f"\n{summary}")
    for env in envs:
        env.ledger.close()
