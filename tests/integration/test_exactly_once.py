"""No payment is lost or charged twice: random delivery sequences, faults injected under the real
adapters (moto + MariaDB), invariants checked on the ledger and the sessions table after each.

Each example delivers charges (few payment_ids, so they collide), redeliveries (new EventBridge
id, same detail), conflicting duplicates, refunds (partial, full, over, wrong currency, of a
missing charge) and invalid events, in random order, some steps concurrently (threads, each its
own execution environment), with DynamoDB throttled at the HTTP layer, MySQL connections killed
mid-transaction or losing the COMMIT answer, crashes between the ledger and the sessions write,
and short Lambda deadlines. See fault_injection.py for the machinery.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.endpoint
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from shared.config import get_processor_settings
from tests.integration.fault_injection import (
    LEDGER_FAULTS,
    NO_FAULTS,
    Delivery,
    Environment,
    Faults,
    LedgerSaboteur,
    ScaledBackoff,
    Throttle,
    build_environment,
    check_deliveries,
    check_ledger,
    check_no_phantom_rows,
    check_sessions_agree,
    deliver,
    in_flight,
    new_event,
    reset_world,
    serialise_metrics,
    serialise_moto,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# payment_id: (currency, amount_minor, merchant_id, customer_id)
CHARGES = {
    "ch-usd": ("USD", 10_000, "m-1", "cu-1"),
    "ch-jpy": ("JPY", 6_000, "m-1", "cu-2"),
    "ch-bhd": ("BHD", 12_345, "m-2", "cu-3"),
}
MISSING_CHARGE = "ch-never"  # refunded, never charged
REFUND_IDS = ("rf-1", "rf-2", "rf-3")
REFUND_KINDS = ("partial", "partial", "full", "over", "wrong-currency")
INVALID_KINDS = (
    "float-amount",
    "string-amount",
    "negative-amount",
    "unknown-currency",
    "missing-payment-id",
    "pan-in-metadata",
    "refund-without-original",
)

Spec = tuple[str, ...]


def _detail(payment_id: str, kind: str, currency: str, amount: Any, parties: tuple[str, str]):
    return {
        "schema_version": "1.0",
        "payment_id": payment_id,
        "type": kind,
        "merchant_id": parties[0],
        "customer_id": parties[1],
        "amount_minor": amount,
        "currency": currency,
        "occurred_at": "2026-11-28T09:59:58Z",
    }


def detail_of(spec: Spec) -> dict[str, Any]:
    """The event detail a spec stands for; equal specs give equal details (same payload hash)."""
    if spec[0] == "charge":
        _, payment_id, variant = spec
        currency, amount, merchant, customer = CHARGES[payment_id]
        amount += 1 if variant == "conflicting" else 0
        return _detail(payment_id, "CHARGE", currency, amount, (merchant, customer))
    if spec[0] == "refund":
        _, refund_id, original, kind = spec
        currency, amount, merchant, customer = CHARGES.get(original, ("USD", 10_000, "m-1", "cu-1"))
        amount = {"partial": amount // 4, "full": amount, "over": amount + 1}.get(kind, amount // 4)
        currency = "EUR" if kind == "wrong-currency" else currency
        detail = _detail(refund_id, "REFUND", currency, amount, (merchant, customer))
        return {**detail, "original_payment_id": original}
    _, kind, payment_id = spec
    detail = _detail(payment_id, "CHARGE", "USD", 1_000, ("m-1", "cu-1"))
    if kind == "float-amount":
        detail["amount_minor"] = 125.5
    elif kind == "string-amount":
        detail["amount_minor"] = "1000"
    elif kind == "negative-amount":
        detail["amount_minor"] = -500
    elif kind == "unknown-currency":
        detail["currency"] = "XYZ"
    elif kind == "missing-payment-id":
        del detail["payment_id"]
    elif kind == "pan-in-metadata":
        detail["metadata"] = {"note": "card 4111 1111 1111 1111"}
    else:
        detail["type"] = "REFUND"
    return detail


charges = st.tuples(
    st.just("charge"),
    st.sampled_from(sorted(CHARGES)),
    st.sampled_from(["canonical", "canonical", "canonical", "conflicting"]),
)
refunds = st.tuples(
    st.just("refund"),
    st.sampled_from(REFUND_IDS),
    st.sampled_from([*sorted(CHARGES), MISSING_CHARGE]),
    st.sampled_from(REFUND_KINDS),
)
invalids = st.tuples(
    st.just("invalid"), st.sampled_from(INVALID_KINDS), st.sampled_from(sorted(CHARGES))
)
payloads = st.one_of(charges, charges, charges, refunds, refunds, invalids)
faults = st.builds(
    Faults,
    ledger=st.one_of(st.none(), st.none(), st.sampled_from(LEDGER_FAULTS)),
    crash_before_sessions=st.sampled_from([False, False, False, True]),
    remaining_ms=st.sampled_from([30_000, 30_000, 30_000, 3_500]),
)
single = st.tuples(payloads, faults).map(lambda pair: (pair,))
# The same payment delivered by several environments at once.
same_payment_at_once = st.tuples(payloads, st.lists(faults, min_size=2, max_size=3)).map(
    lambda both: tuple((both[0], f) for f in both[1])
)
# Several refunds of one charge at once (same or different refund ids).
refunds_at_once = st.tuples(
    st.sampled_from(sorted(CHARGES)),
    st.lists(
        st.tuples(st.sampled_from(REFUND_IDS), st.sampled_from(REFUND_KINDS), faults),
        min_size=2,
        max_size=3,
    ),
).map(lambda both: tuple((("refund", rid, both[0], kind), f) for rid, kind, f in both[1]))
steps = st.one_of(single, single, single, same_payment_at_once, refunds_at_once)
# Often a few charges first, so refunds find their charge; then anything, in any order.
opening_charges = st.lists(st.tuples(charges, faults).map(lambda pair: (pair,)), max_size=3)
plans = st.tuples(opening_charges, st.lists(steps, min_size=1, max_size=12)).map(
    lambda parts: parts[0] + parts[1]
)


class World:
    """Three execution environments sharing one throttle, and the run's statistics."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.throttle = Throttle()
        self.envs = [
            build_environment(get_processor_settings(), sandbox.mariadb, self.throttle)
            for _ in range(3)
        ]
        self.pool = ThreadPoolExecutor(max_workers=3)
        self.stats: Counter[str] = Counter()
        self._ids = 0

    def close(self) -> None:
        self.pool.shutdown()
        for env in self.envs:
            env.ledger.close()

    def event(self, spec: Spec) -> dict[str, Any]:
        self._ids += 1
        return new_event(detail_of(spec), event_id=str(uuid.UUID(int=self._ids)))

    def run(self, plan: list[tuple[tuple[Spec, Faults], ...]]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for step in plan:
            if len(step) == 1:
                spec, step_faults = step[0]
                deliveries.append(deliver(self.envs[0], self.event(spec), step_faults))
                continue
            self.stats["concurrent steps"] += 1
            barrier = threading.Barrier(len(step))
            futures = [
                self.pool.submit(_together, barrier, env, self.event(spec), step_faults)
                for env, (spec, step_faults) in zip(self.envs, step, strict=False)
            ]
            deliveries.extend(future.result() for future in futures)
        return deliveries

    def redrive_failures(self, deliveries: list[Delivery]) -> None:
        """What `drctl redrive` does with the failure destination, once the faults are gone."""
        self.throttle.reset(0.0, 0)
        for delivery in deliveries:
            if delivery.response is None:
                again = deliver(self.envs[0], delivery.event)
                assert again.response is not None, f"redrive failed: {again.errors!r}"
                delivery.response, delivery.errors, delivery.redriven = again.response, [], True
                self.stats["redriven from the failure destination"] += 1

    def tally(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.stats[f"outcome {delivery.outcome}"] += 1
            self.stats["lambda re-invocations"] += len(delivery.errors)
        for env in self.envs:
            for fired in env.ledger.saboteur.fired:
                self.stats[f"ledger fault {fired}"] += 1
            env.ledger.saboteur.fired.clear()
            self.stats["crashes before sessions"] += env.sessions.crashes
            env.sessions.crashes = 0


def _together(barrier: threading.Barrier, env: Environment, event: dict[str, Any], f: Faults):
    barrier.wait(timeout=30)
    return deliver(env, event, f)


def test_no_payment_lost_or_applied_twice_under_faults(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serialise_moto(monkeypatch)
    serialise_metrics(monkeypatch)
    backoff = ScaledBackoff(scale=0.02)
    monkeypatch.setattr(botocore.endpoint, "time", backoff)
    world = World(sandbox)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(plan=plans, rate=st.sampled_from([0.0, 0.1, 0.3, 0.5]), seed=st.integers(0, 2**16))
    def example(plan: list[Any], rate: float, seed: int) -> None:
        reset_world(sandbox)
        world.throttle.reset(rate, seed)
        deliveries = world.run(plan)
        note(f"answers: {[(d.event['detail'].get('payment_id'), d.outcome) for d in deliveries]}")
        parked = sandbox.parked()
        rows = check_ledger(sandbox.mariadb)
        check_deliveries(deliveries, parked, rows)
        check_no_phantom_rows(deliveries, rows)
        check_sessions_agree(sandbox, rows, pending=in_flight(deliveries))
        world.tally(deliveries)

        world.redrive_failures(deliveries)
        parked += sandbox.parked()
        rows = check_ledger(sandbox.mariadb)
        check_deliveries(deliveries, parked, rows)
        check_sessions_agree(sandbox, rows)

    try:
        example()
    finally:
        world.close()

    stats = dict(world.stats)
    stats["DynamoDB HTTP attempts"] = world.throttle.http_attempts
    stats["throttled"] = world.throttle.throttled
    print(f"exactly-once faults exercised: {sorted(stats.items())}")
    # The run must really have exercised what it claims to.
    assert world.throttle.throttled > 0
    assert stats.get("concurrent steps", 0) > 0
    assert stats.get("crashes before sessions", 0) > 0
    assert any(key.startswith("ledger fault ") for key in stats)


@pytest.mark.parametrize("fault", [*LEDGER_FAULTS, "crash-before-sessions"])
def test_each_fault_alone_converges_on_one_write(sandbox: Any, fault: str) -> None:
    """Every fault the property test mixes, alone, on a charge and then a refund of it: one row
    each, the answer a retry gives, the sessions table in step."""
    env = build_environment(get_processor_settings(), sandbox.mariadb)
    if fault == "crash-before-sessions":
        faults = Faults(crash_before_sessions=True)
    else:
        faults = Faults(ledger=fault)
    deliveries = [
        deliver(env, new_event(detail_of(("charge", "ch-usd", "canonical"))), faults),
        deliver(env, new_event(detail_of(("refund", "rf-1", "ch-usd", "partial"))), faults),
    ]
    env.ledger.close()

    # A lost COMMIT answer or a crash after the commit: the retry finds the row (DUPLICATE).
    after_commit = fault in ("ack-lost", "crash-before-sessions")
    assert [d.outcome for d in deliveries] == ["DUPLICATE" if after_commit else "PROCESSED"] * 2
    # Only a crash fails the invocation: the ledger retries a dropped connection in place.
    assert [len(d.errors) for d in deliveries] == [int(fault == "crash-before-sessions")] * 2
    if fault.startswith("kill@") or fault == "ack-lost":
        # A charge's transaction has three statements, a refund's five.
        expected = [fault] if fault == "kill@3" else [fault, fault]
        assert env.ledger.saboteur.fired == expected
        # Each dropped connection was noticed, discarded and replaced.
        assert env.ledger.connects == 1 + len(expected)
    else:
        assert env.sessions.crashes == 2
        assert env.ledger.connects == 1
    parked = sandbox.parked()
    rows = check_ledger(sandbox.mariadb)
    assert sorted(rows) == ["ch-usd", "rf-1"]
    assert rows["ch-usd"].refunded_minor == 2_500
    check_deliveries(deliveries, parked, rows)
    check_sessions_agree(sandbox, rows)


# -- the races the property test found, pinned down deterministically --------------------------


class _HoldBeforeCommit(LedgerSaboteur):
    """Once armed, stops the next transaction just before its COMMIT until told to go on."""

    def __init__(self, mariadb: Any) -> None:
        super().__init__(mariadb)
        self.armed = False
        self.holding = threading.Event()
        self.go_on = threading.Event()

    def before_commit(self, conn: Any) -> None:
        if self.armed:
            self.armed = False
            self.holding.set()
            assert self.go_on.wait(timeout=30)
        super().before_commit(conn)


class _SignalAfterFirstRead(LedgerSaboteur):
    """Says so once the first statement of its transaction (the snapshot read) has run."""

    def __init__(self, mariadb: Any) -> None:
        super().__init__(mariadb)
        self.first_read_done = threading.Event()

    def before_statement(self, conn: Any) -> None:
        if self._statement == 1:
            self.first_read_done.set()
        super().before_statement(conn)


@pytest.mark.parametrize("kind", ["full", "partial"])
def test_redelivery_racing_its_first_delivery_answers_duplicate(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Two deliveries of one refund: the second reads before the first commits, then waits for
    the charge's lock. Whatever is left on the charge, it must answer DUPLICATE: REJECTED would
    park a refund the ledger holds (and a redrive would then say DUPLICATE after all)."""
    serialise_moto(monkeypatch)
    settings_ = get_processor_settings()
    first_saboteur = _HoldBeforeCommit(sandbox.mariadb)
    second_saboteur = _SignalAfterFirstRead(sandbox.mariadb)
    first = build_environment(settings_, sandbox.mariadb, saboteur=first_saboteur)
    second = build_environment(settings_, sandbox.mariadb, saboteur=second_saboteur)
    charge = new_event(detail_of(("charge", "ch-usd", "canonical")))
    assert deliver(first, charge).outcome == "PROCESSED"
    first_saboteur.armed = True
    refund = detail_of(("refund", "rf-1", "ch-usd", kind))

    with ThreadPoolExecutor(max_workers=2) as pool:
        first_delivery = pool.submit(deliver, first, new_event(refund), NO_FAULTS)
        assert first_saboteur.holding.wait(timeout=30)
        second_delivery = pool.submit(deliver, second, new_event(refund), NO_FAULTS)
        assert second_saboteur.first_read_done.wait(timeout=30)
        first_saboteur.go_on.set()
        answers = [first_delivery.result().outcome, second_delivery.result().outcome]

    assert answers == ["PROCESSED", "DUPLICATE"]
    rows = check_ledger(sandbox.mariadb)
    assert rows["ch-usd"].refunded_minor == refund["amount_minor"]
    assert sandbox.parked() == []
    check_sessions_agree(sandbox, rows)
    first.ledger.close()
    second.ledger.close()
