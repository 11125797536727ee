"""PAN detection and masking: catches printed card numbers, not UUIDs or ordinary ids."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import card_data


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card 5500 0000 0000 0004 exp 12/29",
        "3782 822463 10005",
        "pay-4111111111111111",
    ],
)
def test_finds_pans(text: str) -> None:
    assert card_data.contains_pan(text)
    assert "[PAN REDACTED]" in card_data.mask_text(text)


@pytest.mark.parametrize(
    "text", ["4111111111111112", "12345", "2026-11-28T09:59:58Z", "ord-77812", "4242"]
)
def test_leaves_other_numbers(text: str) -> None:
    assert not card_data.contains_pan(text)
    assert card_data.mask_text(text) == text


@given(st.uuids())
def test_uuids_are_not_pans(value: uuid.UUID) -> None:
    assert not card_data.contains_pan(str(value))


def test_mask_walks_nested_structures() -> None:
    masked = card_data.mask({"a": ["x 4111 1111 1111 1111"], "b": 4111111111111111, "c": True})
    assert masked == {"a": ["x [PAN REDACTED]"], "b": "[PAN REDACTED]", "c": True}


def test_pan_paths_name_where_the_card_number_is() -> None:
    detail = {"payment_id": "p1", "metadata": {"note": "card 4111 1111 1111 1111"}, "x": [1, "ok"]}
    assert card_data.pan_paths(detail) == ["metadata.note"]
    assert card_data.pan_paths({"list": ["a", "4111111111111111"]}) == ["list[1]"]
    assert card_data.pan_paths({"4111111111111111": "v"}) == ["[PAN REDACTED]"]
    assert card_data.pan_paths({"payment_id": "p1"}) == []
