"""The event contract, field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payment_processor.models import (
    CURRENCY_EXPONENTS,
    InvalidEvent,
    PaymentDetail,
    event_age,
    parse_payment,
)
from tests.conftest import load_event


def detail(**changes: Any) -> dict[str, Any]:
    base = dict(load_event("01_charge_usd.json")["detail"])
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_sample_charge_is_valid() -> None:
    assert PaymentDetail.parse(detail()).amount_minor == 12550


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": 125.0},
        {"amount_minor": "12550"},
        {"amount_minor": True},
        {"amount_minor": 0},
        {"amount_minor": -1},
        {"currency": "usd"},
        {"currency": "XYZ"},
        {"payment_id": "has space"},
        {"payment_id": "x" * 65},
        {"payment_id": "pay-1\n"},  # a trailing newline is not part of an identifier
        {"amount_minor": 12550.0},
        {"occurred_at": 1764323998},  # the contract is an ISO-8601 string, not epoch seconds
        {"metadata": {f"k{i}": "v" for i in range(21)}},
        {"metadata": {"": "v"}},
        {"card": {"brand": "visa", "last4": "4242", "number": "x"}},
        {"schema_version": "2.0"},
        {"type": "CAPTURE"},
        {"occurred_at": "2026-11-28T10:00:00"},  # no zone
        {"original_payment_id": "pay-1"},  # forbidden on a CHARGE
        {"unexpected": "field"},
        {"card": {"brand": "visa", "last4": "42"}},
        {"metadata": {"k": 1}},
    ],
)
def test_contract_rejects(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        PaymentDetail.parse(detail(**changes))


def test_refund_needs_its_original() -> None:
    with pytest.raises(InvalidEvent):
        PaymentDetail.parse(detail(type="REFUND"))
    refund = PaymentDetail.parse(detail(type="REFUND", original_payment_id="pay-x"))
    assert refund.original_payment_id == "pay-x"


def test_payload_hash_ignores_envelope_and_zone_spelling() -> None:
    a = PaymentDetail.parse(detail(occurred_at="2026-11-28T09:59:58Z"))
    b = PaymentDetail.parse(detail(occurred_at="2026-11-28T10:59:58+01:00"))
    c = PaymentDetail.parse(detail(amount_minor=12551))
    assert a.payload_hash() == b.payload_hash()
    assert a.payload_hash() != c.payload_hash()


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_any_positive_integer_amount_in_a_supported_currency_is_accepted(
    amount: int, currency: str
) -> None:
    payment = PaymentDetail.parse(detail(amount_minor=amount, currency=currency))
    assert (payment.amount_minor, payment.currency) == (amount, currency)


# Digests stored in ledgers: the canonical form must never change under them, or a redelivery
# after a deploy would be answered CONFLICT. Values made with the first implementation.
GOLDEN_HASHES = [
    ({}, "23f4fa4479dd84a714fab0ba56ed747f820b93f96dbc0da286d08bf71eabe431"),
    (
        {
            "occurred_at": "2026-11-28T10:59:58.123+01:00",
            "metadata": {"b": "2", "a": "1"},
            "card": {"brand": "Visa", "last4": "4242"},
        },
        "0dac881b1c8613613e44787f0f25c6cbf67819a74bf5edf4f6607fec2fb4ee9b",
    ),
    (
        {
            "occurred_at": "2026-11-28T09:59:58.000001Z",
            "metadata": {"b": "2", "a": "1"},
            "card": {"brand": "Visa", "last4": "4242"},
        },
        "e77c64450009de4214006e302f6804b754e8e47bdd67f2c8fda635cd72a2418f",
    ),
]


@pytest.mark.parametrize(("changes", "digest"), GOLDEN_HASHES)
def test_payload_hash_is_stable_across_releases(changes: dict[str, Any], digest: str) -> None:
    assert PaymentDetail.parse(detail(**changes)).payload_hash() == digest


def test_refund_sample_hash_is_stable() -> None:
    refund = PaymentDetail.parse(load_event("04_refund_full_jpy.json")["detail"])
    assert (
        refund.payload_hash() == "584ffc94b751830a3afc24922a32ce5f2cb985a9a5637a2d0c4cc4c145158798"
    )


def test_occurred_at_is_kept_in_utc() -> None:
    payment = PaymentDetail.parse(detail(occurred_at="2026-11-28T10:59:58+01:00"))
    assert payment.occurred_at.isoformat() == "2026-11-28T09:59:58+00:00"


@pytest.mark.parametrize(
    ("event_changes", "reason"),
    [
        ({"source": "other.service"}, "source: Invalid enum value"),
        ({"detail-type": None}, "Object missing required field `detail-type`"),
        ({"detail": []}, "detail: Expected `object`, got `array`"),
        ({"detail": {"amount_minor": 1.5}}, "amount_minor: Expected `int`, got `float`"),
        ({"detail": {"card": {"brand": "visa", "last4": "42"}}}, "card.last4: Expected `str`"),
        ({"detail": {"type": "REFUND"}}, "original_payment_id: required for a REFUND"),
        ({"detail": {"currency": "XYZ"}}, "currency: not a currency the service supports"),
    ],
)
def test_reasons_name_the_field_and_rule(event_changes: dict[str, Any], reason: str) -> None:
    event = load_event("01_charge_usd.json")
    for key, value in event_changes.items():
        if key == "detail" and isinstance(value, dict):
            event["detail"] = {**event["detail"], **value}
        elif value is None:
            del event[key]
        else:
            event[key] = value
    with pytest.raises(InvalidEvent) as caught:
        parse_payment(event)
    assert caught.value.reason.startswith(reason)


def test_a_rejected_value_is_not_echoed_in_the_reason() -> None:
    with pytest.raises(InvalidEvent) as caught:
        PaymentDetail.parse(detail(type="4111111111111111"))
    assert "4111" not in caught.value.reason
    assert caught.value.reason == "type: Invalid enum value"


# -- issue 7: edges of time, empty optionals, the envelope's time ------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "0999-12-31T23:59:59Z",
        "1000-01-01T00:30:00+01:00",  # 0999 in UTC
    ],
)
def test_occurred_at_outside_what_the_ledger_holds_is_rejected(occurred_at: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        PaymentDetail.parse(detail(occurred_at=occurred_at))
    assert caught.value.reason.startswith("occurred_at: ")


@pytest.mark.parametrize(
    "occurred_at", ["1000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2026-11-28T10:00:00Z"]
)
def test_occurred_at_within_the_range_is_accepted(occurred_at: str) -> None:
    assert PaymentDetail.parse(detail(occurred_at=occurred_at)).occurred_at.tzinfo is UTC


def test_empty_metadata_is_the_same_payload_as_none() -> None:
    without = PaymentDetail.parse({k: v for k, v in detail().items() if k != "metadata"})
    empty = PaymentDetail.parse(detail(metadata={}))
    null = PaymentDetail.parse({**detail(), "metadata": None})
    assert empty.metadata is None
    assert without.payload_hash() == empty.payload_hash() == null.payload_hash()
    assert PaymentDetail.parse(detail(metadata={"a": ""})).payload_hash() != empty.payload_hash()


def test_a_metadata_key_rule_names_the_key() -> None:
    with pytest.raises(InvalidEvent) as caught:
        PaymentDetail.parse(detail(metadata={"k" * 65: "v"}))
    assert caught.value.reason.startswith("metadata (a key): Expected `str` of length <= 64")


def test_a_long_unknown_field_name_is_cut_in_the_reason() -> None:
    with pytest.raises(InvalidEvent) as caught:
        PaymentDetail.parse({**detail(), "x" * 5_000: 1})
    assert len(caught.value.reason) <= 301


NOW = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("time", "age"),
    [
        ("2026-11-30T07:58:00Z", 120.0),
        ("2026-11-30T08:58:00+01:00", 120.0),
        ("2026-11-30T08:00:30Z", -30.0),
        (None, None),
        (1764489600, None),
        ("", None),
        ("yesterday", None),
        ("2026-11-30T07:58:00", None),  # no zone
        ("2026-11-30T07:58:00Z" + " " * 100, None),
    ],
)
def test_event_age_comes_from_the_envelope_time(time: Any, age: float | None) -> None:
    event = {"time": time} if time is not None else {}
    found = event_age(event, NOW)
    assert (None if found is None else found.total_seconds()) == age


@pytest.mark.parametrize("event", [[], "x", None, 3, {"time": {"nested": 1}}])
def test_event_age_of_anything_else_is_unknown(event: Any) -> None:
    assert event_age(event, NOW) is None
