"""Crash-freedom, by property: whatever JSON value arrives, and however a valid event is mutated,
the real decorated handler (Powertools logger and correlation id included) against MariaDB and
moto answers one of the outcomes, or raises a transient error (shared.errors.TransientError),
never anything else; and no card number leaves it unmasked: not in the response, not in the
parked copy, not in a log line, not in the correlation id. The ledger stays balanced.

`make test` runs the default number of examples; HYPOTHESIS_PROFILE=long runs 5,000 per test.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from payment_processor.handler import lambda_handler
from shared import card_data
from shared.errors import TransientError
from shared.observability import logger
from tests.conftest import LambdaContextStub, load_event
from tests.integration.fault_injection import check_ledger
from tests.integration.scenario import PowertoolsLines, capture_log_lines, digits_of

pytestmark = pytest.mark.integration

OUTCOMES = {"PROCESSED", "DUPLICATE", "CONFLICT", "REJECTED", "PARKED"}
SET_ASIDE = {"CONFLICT", "REJECTED", "PARKED"}
CARD_NUMBERS = ("4111111111111111", "378282246310005", "6011000990139424", "4222222222222")
SAMPLES = (
    "01_charge_usd.json",
    "02_charge_jpy.json",
    "03_charge_bhd.json",
    "04_refund_full_jpy.json",
    "05_refund_partial_usd.json",
)
DETAIL_FIELDS = (
    "schema_version",
    "payment_id",
    "type",
    "original_payment_id",
    "merchant_id",
    "customer_id",
    "amount_minor",
    "currency",
    "occurred_at",
    "card",
    "metadata",
    "unexpected",
)
ENVELOPE_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region")


def spelled(number: str, separator: str, prefix: str, suffix: str) -> str:
    if separator:
        number = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    return f"{prefix}{number}{suffix}"


card_texts = st.builds(
    spelled,
    st.sampled_from(CARD_NUMBERS),
    st.sampled_from(["", " ", "-", ".", "_"]),
    st.sampled_from(["", "card", "p-", "c_", "note "]),
    st.sampled_from(["", "X", "-X", " exp 12/29"]),
)
edge_texts = st.sampled_from(
    [
        "",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "2026-11-28T09:59:58Z",
        "2026-11-28T09:59:58",
        "pay-usd-0001",
        "PAY-USD-0001",
        "pay-jpy-0001",
        "REFUND",
        "CHARGE",
        "USD",
        "1.0",
        "\x00",
        "\ud800",
        "x" * 300,
        "Payment Transaction",
        "payment.service",
    ]
)
texts = st.one_of(st.text(max_size=24), edge_texts, card_texts)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**12, max_value=10**20),
    st.floats(),
    st.sampled_from([4111111111111111, 4111111111111111.0, 2**63, 2**200, -1, 0]),
    texts,
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), card_texts), inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = {"k": "v"}
    for _ in range(depth):
        value = {"n": value}
    return value


Mutation = Callable[[dict[str, Any]], None]


def _set_detail(field: str, value: Any) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        if isinstance(event.get("detail"), dict):
            event["detail"][field] = value

    return apply


def _del_detail(field: str) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        if isinstance(event.get("detail"), dict):
            event["detail"].pop(field, None)

    return apply


def _set_envelope(field: str, value: Any) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        event[field] = value

    return apply


def _del_envelope(field: str) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        event.pop(field, None)

    return apply


def _swap_case(field: str) -> Mutation:
    def apply(event: dict[str, Any]) -> None:
        detail = event.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get(field), str):
            detail[field] = detail[field].swapcase()

    return apply


mutations = st.one_of(
    st.builds(_set_detail, st.sampled_from(DETAIL_FIELDS), st.one_of(json_values, texts)),
    st.builds(_del_detail, st.sampled_from(DETAIL_FIELDS)),
    st.builds(_set_envelope, st.sampled_from([*ENVELOPE_FIELDS, "detail"]), json_values),
    st.builds(_del_envelope, st.sampled_from([*ENVELOPE_FIELDS, "detail"])),
    st.builds(
        _set_detail,
        st.just("metadata"),
        st.builds(nested, st.sampled_from([2, 40, 999, 1_000, 1_001, 3_000])),
    ),
    st.builds(
        _swap_case,
        st.sampled_from(["payment_id", "original_payment_id", "merchant_id", "customer_id"]),
    ),
)
mutated_events = st.builds(
    lambda sample, changes: _mutated(sample, changes),
    st.sampled_from(SAMPLES),
    st.lists(mutations, min_size=1, max_size=4),
)


def _mutated(sample: str, changes: list[Mutation]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(sample))
    for change in changes:
        change(event)
    return event


def check_answer(sandbox: Any, event: Any, lines: PowertoolsLines) -> str:
    """Run the handler on ``event``; check the answer and everything that left; return it."""
    lines.lines.clear()
    try:
        response = lambda_handler(event, LambdaContextStub())
    except TransientError as exc:
        outcome, response = f"transient {type(exc).__name__}", None
    parked = sandbox.parked()
    if response is not None:
        outcome = response["outcome"]
        assert outcome in OUTCOMES, response
        assert (outcome in SET_ASIDE) == (len(parked) == 1), (outcome, len(parked))
        assert len(parked) <= 1
        if outcome != "PROCESSED":
            assert isinstance(response["reason"], str) and response["reason"], response
    else:
        assert parked == []
    texts = [
        json.dumps(response),  # what Lambda would serialise: it must serialise
        *(json.dumps(message) for message in parked),
        *lines.lines,
        str(logger.get_correlation_id()),
    ]
    for text in texts:
        assert not card_data.contains_pan(text), "a card number left the handler"
        for number in CARD_NUMBERS:
            assert number not in digits_of(text), "a planted card number left the handler"
    note(f"answer: {outcome}")
    return outcome


SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _report(name: str, seen: Counter[str], capsys: Any, record_property: Any) -> None:
    summary = f"crash-freedom, {name}: {sum(seen.values())} examples, {dict(sorted(seen.items()))}"
    record_property("crash_freedom", summary)
    with capsys.disabled():
        print(f"\n{summary}")


def test_any_json_value_is_answered(sandbox: Any, capsys: Any, record_property: Any) -> None:
    seen: Counter[str] = Counter()
    with capture_log_lines() as lines:

        @SETTINGS
        @given(event=json_values)
        def example(event: Any) -> None:
            seen[check_answer(sandbox, event, lines)] += 1

        example()
    _report("any JSON value", seen, capsys, record_property)
    assert set(seen) <= {"REJECTED"}, seen
    check_ledger(sandbox.mariadb)


def test_any_mutation_of_a_valid_event_is_answered(
    sandbox: Any, capsys: Any, record_property: Any
) -> None:
    seen: Counter[str] = Counter()
    with capture_log_lines() as lines:

        @SETTINGS
        @given(event=mutated_events)
        def example(event: dict[str, Any]) -> None:
            seen[check_answer(sandbox, event, lines)] += 1

        example()
    _report("mutated valid events", seen, capsys, record_property)
    assert "REJECTED" in seen and set(seen) & {"PROCESSED", "DUPLICATE"}, seen
    check_ledger(sandbox.mariadb)
