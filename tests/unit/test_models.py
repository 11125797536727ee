"""The event contract, field by field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from payment_processor.models import CURRENCY_EXPONENTS, PaymentDetail
from tests.conftest import load_event


def detail(**changes: Any) -> dict[str, Any]:
    base = dict(load_event("01_charge_usd.json")["detail"])
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_sample_charge_is_valid() -> None:
    assert PaymentDetail.model_validate(detail()).amount_minor == 12550


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
    with pytest.raises(ValidationError):
        PaymentDetail.model_validate(detail(**changes))


def test_refund_needs_its_original() -> None:
    with pytest.raises(ValidationError):
        PaymentDetail.model_validate(detail(type="REFUND"))
    refund = PaymentDetail.model_validate(detail(type="REFUND", original_payment_id="pay-x"))
    assert refund.original_payment_id == "pay-x"


def test_payload_hash_ignores_envelope_and_zone_spelling() -> None:
    a = PaymentDetail.model_validate(detail(occurred_at="2026-11-28T09:59:58Z"))
    b = PaymentDetail.model_validate(detail(occurred_at="2026-11-28T10:59:58+01:00"))
    c = PaymentDetail.model_validate(detail(amount_minor=12551))
    assert a.payload_hash() == b.payload_hash()
    assert a.payload_hash() != c.payload_hash()


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_any_positive_integer_amount_in_a_supported_currency_is_accepted(
    amount: int, currency: str
) -> None:
    payment = PaymentDetail.model_validate(detail(amount_minor=amount, currency=currency))
    assert (payment.amount_minor, payment.currency) == (amount, currency)
