"""Every input that is not a valid payment is answered REJECTED with a reason naming the field,
never an exception (an exception would make Lambda retry it, then hand the raw event to the
failure destination). Through the real, decorated handler against MariaDB and moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from tests.conftest import ledger_rows, load_event
from tests.integration.scenario import DELETE, charge, event

pytestmark = pytest.mark.integration


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"n": value}
    return value


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _rejected(sandbox: Any, answer: dict[str, Any], field: str) -> None:
    assert answer["outcome"] == "REJECTED", answer
    assert answer["reason"].startswith("INVALID_EVENT: "), answer
    assert field in answer["reason"], answer
    (parked,) = sandbox.parked()
    assert (parked["outcome"], parked["code"]) == ("REJECTED", "INVALID_EVENT")
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+01:00",  # UTC would be year 0
        "9999-12-31T23:30:00-01:00",  # UTC would be year 10000
        "0001-01-01T00:00:00Z",  # outside what the ledger's DATETIME column holds
        "0999-12-31T23:59:59Z",
    ],
)
def test_occurred_at_at_the_edges_of_time(
    sandbox: Any, lambda_context: Any, occurred_at: str
) -> None:
    answer = lambda_handler(charge("pay-edge-1", occurred_at=occurred_at), lambda_context)
    _rejected(sandbox, answer, "occurred_at")


@pytest.mark.parametrize("depth", [1_000, 1_500, 5_000, 50_000])
def test_deeply_nested_metadata(sandbox: Any, lambda_context: Any, depth: int) -> None:
    answer = lambda_handler(charge("pay-deep-1", metadata=nested(depth)), lambda_context)
    _rejected(sandbox, answer, "metadata")


@pytest.mark.parametrize("depth", [1_000, 50_000])
def test_deeply_nested_unknown_field_and_envelope(
    sandbox: Any, lambda_context: Any, depth: int
) -> None:
    built = charge("pay-deep-2", extra=nested_list(depth))
    built["resources"] = nested_list(depth)
    answer = lambda_handler(built, lambda_context)
    assert answer["outcome"] == "REJECTED"
    (parked,) = sandbox.parked()
    assert parked["code"] == "INVALID_EVENT"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ([load_event("01_charge_usd.json")], "array"),
        ("a payment", "str"),
        (12550, "int"),
        (125.5, "float"),
        (None, "null"),
        (True, "bool"),
        ({}, "source"),
    ],
)
def test_an_event_that_is_not_an_object(
    sandbox: Any, lambda_context: Any, raw: Any, kind: str
) -> None:
    answer = lambda_handler(raw, lambda_context)
    assert answer["outcome"] == "REJECTED", answer
    assert answer["payment_id"] is None
    assert kind in answer["reason"]
    (parked,) = sandbox.parked()
    assert parked["code"] == "INVALID_EVENT"
    assert parked["event"] == raw


def test_detail_given_as_a_json_string(sandbox: Any, lambda_context: Any) -> None:
    built = load_event("01_charge_usd.json")
    built["detail"] = json.dumps(built["detail"])
    answer = lambda_handler(built, lambda_context)
    _rejected(sandbox, answer, "detail")


@pytest.mark.parametrize(
    "changes",
    [
        {"payment_id": "x" * 10_000},
        {"payment_id": "pay\x00nul"},
        {"payment_id": "pay-\ud800"},  # a lone surrogate, as json.loads gives it
        {"currency": "\u0000"},
        {"metadata": {"k" * 10_000: "v"}},
        {"amount_minor": float("inf")},
        {"amount_minor": float("nan")},
        {"amount_minor": -(2**63)},
        {"card": {"brand": "visa", "last4": "4242", "extra": [1, 2, 3]}},
        {"type": "REFUND", "original_payment_id": None},
        {"schema_version": 1.0},
        {"occurred_at": "not a time"},
        {"occurred_at": "2026-11-28T09:59:58"},
    ],
)
def test_malformed_fields(sandbox: Any, lambda_context: Any, changes: dict[str, Any]) -> None:
    field = next(iter(changes))
    if field == "type":
        field = "original_payment_id"
    answer = lambda_handler(event(**changes), lambda_context)
    _rejected(sandbox, answer, field)


def test_an_amount_beyond_any_integer_column_is_rejected(sandbox: Any, lambda_context: Any) -> None:
    answer = lambda_handler(charge("pay-bad-3", amount_minor=2**200), lambda_context)
    assert answer["outcome"] == "REJECTED"
    assert "amount_minor" in answer["reason"]


def test_unknown_field_is_named_but_its_value_is_not(sandbox: Any, lambda_context: Any) -> None:
    answer = lambda_handler(charge("pay-bad-2", amount="12550 secret"), lambda_context)
    _rejected(sandbox, answer, "amount")
    assert "secret" not in answer["reason"]


# -- metadata {} and absent metadata are the same payment (as card null and absent are) --------


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ({"metadata": {}}, {"metadata": DELETE}),
        ({"metadata": DELETE}, {"metadata": {}}),
        ({"metadata": None}, {"metadata": {}}),
        ({"card": None}, {"card": DELETE}),
    ],
)
def test_empty_and_absent_optionals_are_the_same_payload(
    sandbox: Any, lambda_context: Any, first: dict[str, Any], again: dict[str, Any]
) -> None:
    assert lambda_handler(event(**{"card": DELETE, **first}), lambda_context)["outcome"] == (
        "PROCESSED"
    )
    assert lambda_handler(event(**{"card": DELETE, **again}), lambda_context)["outcome"] == (
        "DUPLICATE"
    )
    assert sandbox.parked() == []
