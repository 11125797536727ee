"""Precision and recall of the card-number rule (shared.card_data), measured on whole events:

- recall: every published test card number of the major brands, in every spelling (one run; the
  brand's printed groups joined by space, dash, dot, underscore, each of them mixed, or " - "),
  glued to letters or embedded in text, placed in each string field of the event, each metadata
  key and value, the envelope, and as amount_minor (int and float): 100 % found at that field,
  and gone from the masked copy;
- precision: 100,000 random UUIDs (v4 and v1), ULIDs and EventBridge event ids used as the
  payment, merchant and customer ids, the envelope id and metadata values: 0 events refused,
  by the card rule or by the contract.

Both figures are printed (pytest -s, or the run's summary) and asserted.
"""

from __future__ import annotations

import copy
import json
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from payment_processor.models import parse_payment
from payment_processor.service import PaymentService
from shared import card_data
from tests.unit.fakes import FakeGate, FakeLedger, FakeParking, FakeSessions

# Test card numbers as the acquirers publish them (Stripe, Adyen, Braintree/PayPal test-card
# pages), by brand. Each must pass Luhn (checked below, against typos).
PUBLISHED: dict[str, tuple[str, ...]] = {
    "Visa": (
        "4111111111111111",
        "4012888888881881",
        "4242424242424242",
        "4000056655665556",
        "4000002500003155",
        "4000000000003220",
        "4917610000000000",
        "4222222222222",  # 13 digits
        "4917610000000000003",  # 19 digits
    ),
    "Mastercard": (
        "5555555555554444",
        "5105105105105100",
        "5200828282828210",
        "5454545454545454",
        "5425233430109903",
        "2223003122003222",  # 2-series
        "2223000048400011",
        "2222400010000008",
        "2223520043560014",
    ),
    "American Express": (
        "378282246310005",
        "371449635398431",
        "378734493671000",
        "370000000000002",
        "374245455400126",
    ),
    "Discover": (
        "6011111111111117",
        "6011000990139424",
        "6011981111111113",
        "6445644564456445",
        "6011601160116611",
        "6011000400000000",
    ),
    "Diners Club": (
        "30569309025904",
        "38520000023237",
        "36227206271667",
        "36006666333344",
        "36148900647913",
        "3056930009020004",  # 16 digits
    ),
    "JCB": ("3530111333300000", "3566002020360505", "3566111111111113", "3569990010095841"),
    "UnionPay": (
        "6200000000000005",
        "6200000000000047",
        "6212345678901232",
        "6250941006528599",
        "6205500000000000004",  # 19 digits
    ),
    "Maestro": ("6759649826438453", "6304000000000000", "6799990100000000019"),  # 19 digits
}
CARDS = [(brand, number) for brand, numbers in PUBLISHED.items() for number in numbers]
SEPARATORS = (" ", "-", ".", "_")
EMBEDDINGS = ("{}", "card{}", "{}X", "p-{}-X", "c_{}", "note: {} exp 12/29", "ID{}end")
# Where a spelling is placed: (path the rule must report, how to put it there).
STRING_FIELDS = (
    "detail.payment_id",
    "detail.original_payment_id",
    "detail.merchant_id",
    "detail.customer_id",
    "detail.currency",
    "detail.occurred_at",
    "detail.schema_version",
    "detail.type",
    "detail.card.brand",
    "detail.card.last4",
    "detail.metadata.note",
    "detail.metadata.<key>",
    "id",
    "source",
    "detail-type",
    "time",
    "region",
    "account",
    "resources[0]",
)
NUMBER_FIELDS = ("detail.amount_minor",)


def layouts(length: int) -> list[tuple[int, ...]]:
    """How cards of this length are printed."""
    return {
        13: [(4, 4, 4, 1), (4, 4, 5)],
        14: [(4, 6, 4), (4, 4, 4, 2)],
        15: [(4, 6, 5), (4, 4, 4, 3)],
        16: [(4, 4, 4, 4)],
        19: [(4, 4, 4, 4, 3)],
    }[length]


def spellings(number: str) -> Iterator[str]:
    yield number
    for layout in layouts(len(number)):
        groups, start = [], 0
        for size in layout:
            groups.append(number[start : start + size])
            start += size
        for separator in SEPARATORS:
            yield separator.join(groups)
        for offset in range(len(SEPARATORS)):  # mixed: each gap its own separator
            mixed = groups[0]
            for index, group in enumerate(groups[1:]):
                mixed += SEPARATORS[(offset + index) % len(SEPARATORS)] + group
            yield mixed
        yield " - ".join(groups)


def base_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "9f6079f0-511b-5aab-abf0-21186037058d",
        "detail-type": "Payment Transaction",
        "source": "payment.service",
        "account": "123456789012",
        "time": "2026-11-28T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"],
        "detail": {
            "schema_version": "1.0",
            "payment_id": "ref-usd-0001",
            "type": "REFUND",
            "original_payment_id": "pay-usd-0001",
            "merchant_id": "merchant-acme",
            "customer_id": "cust-1001",
            "amount_minor": 12550,
            "currency": "USD",
            "occurred_at": "2026-11-28T09:59:58Z",
            "card": {"brand": "visa", "last4": "4242"},
            "metadata": {"order_id": "ord-77812", "note": "ok"},
        },
    }


def place(event: dict[str, Any], where: str, value: Any) -> tuple[Any, str]:
    """Put ``value`` at ``where`` in ``event`` (in place); returns what is needed to take it out
    again (see ``unplace``) and the path the rule must report."""
    detail = event["detail"]
    if where == "detail.metadata.<key>":
        detail["metadata"][value] = "v"
        return (detail["metadata"], value, None), f"detail.metadata.{card_data.mask_text(value)}"
    if where == "resources[0]":
        container, key = event["resources"], 0
    elif where.startswith("detail.card."):
        container, key = detail["card"], where.rsplit(".", 1)[1]
    elif where.startswith("detail.metadata."):
        container, key = detail["metadata"], "note"
    elif where.startswith("detail."):
        container, key = detail, where.split(".", 1)[1]
    else:
        container, key = event, where
    old, container[key] = container[key], value
    return (container, key, old), where


def unplace(undo: tuple[Any, Any, Any]) -> None:
    container, key, old = undo
    if old is None:
        del container[key]
    else:
        container[key] = old


def masked_copy(where: str, value: Any) -> Any:
    """The masked copy of what was placed, under the same key (masking depends only on the
    value and, for ids, on its key)."""
    if where == "detail.metadata.<key>":
        return list(card_data.mask({value: "v"}))
    return card_data.mask({where.rsplit(".", 1)[-1]: value})


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def test_the_published_numbers_are_card_numbers() -> None:
    assert len(CARDS) >= 45
    for brand, number in CARDS:
        assert card_data.luhn_valid(number), (brand, len(number))
        assert 13 <= len(number) <= 19
    assert {len(n) for _, n in CARDS} == {13, 14, 15, 16, 19}


def test_every_published_card_number_in_every_spelling_and_field_is_caught(
    capsys: pytest.CaptureFixture[str], record_property: Any
) -> None:
    placed = caught = 0
    missed: list[str] = []
    for brand, number in CARDS:
        texts = [embedding.format(s) for s in spellings(number) for embedding in EMBEDDINGS]
        values: list[tuple[str, Any]] = [(f, t) for f in STRING_FIELDS for t in texts]
        values += [(f, int(number)) for f in NUMBER_FIELDS]
        if int(number) < 2**53:  # a float holds it exactly
            values += [(f, float(number)) for f in NUMBER_FIELDS]
        event = base_event()
        for where, value in values:
            undo, path = place(event, where, value)
            placed += 1
            found = path in card_data.pan_paths(event)
            masked = json.dumps(masked_copy(where, value))
            unplace(undo)
            if found and number not in digits_of(masked):
                caught += 1
            else:  # what went wrong, without the number itself
                missed.append(f"{brand} {len(number)} digits at {where} ({type(value).__name__})")

    summary = (
        f"card-number recall: {caught} of {placed} placements caught "
        f"({100 * caught / placed:.2f} %), {len(CARDS)} published numbers of {len(PUBLISHED)} "
        f"brands, {len(STRING_FIELDS) + len(NUMBER_FIELDS)} fields"
    )
    record_property("card_number_recall", summary)
    with capsys.disabled():
        print(f"\n{summary}")
    assert missed == []
    assert caught == placed > 60_000


# -- precision ----------------------------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(rng: random.Random) -> str:
    """A ULID: 48-bit millisecond time (2020-2035) and 80 random bits, Crockford base32."""
    value = (rng.randrange(1_577_836_800_000, 2_051_222_400_000) << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def corpus(rng: random.Random, size: int) -> dict[str, list[str]]:
    quarter = size // 4
    return {
        "UUID v4": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(quarter)],
        "UUID v1": [str(uuid.UUID(int=rng.getrandbits(128), version=1)) for _ in range(quarter)],
        "ULID": [ulid(rng) for _ in range(quarter)],
        # EventBridge assigns random (v4) UUIDs to events; ids built on them carry a prefix.
        "EventBridge id": [
            rng.choice(("", "evt-", "evt_")) + str(uuid.UUID(int=rng.getrandbits(128), version=4))
            for _ in range(quarter)
        ],
    }


def corpus_events(ids: list[str], event_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Every id used as an id and as a metadata value, with an EventBridge id in the envelope.
    One event, changed in place each time (the rule keeps nothing of it)."""
    event = base_event()
    detail = event["detail"]
    for index, payment_id in enumerate(ids):
        event["id"] = event_ids[index % len(event_ids)]
        detail.update(
            payment_id=payment_id,
            original_payment_id=ids[index - 1],
            merchant_id=ids[index - 2],
            customer_id=ids[index - 3],
            metadata={"ref": ids[index - 4], "trace": event_ids[index % len(event_ids) - 1]},
        )
        yield event


def test_random_ids_are_never_taken_for_card_numbers(
    capsys: pytest.CaptureFixture[str], record_property: Any
) -> None:
    rng = random.Random(20261130)
    kinds = corpus(rng, 100_000)
    ids = [value for values in kinds.values() for value in values]
    rng.shuffle(ids)
    assert len(ids) >= 100_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value) for value in ids)

    refused = 0
    events = 0
    for event in corpus_events(ids, kinds["EventBridge id"]):
        events += 1
        if card_data.pan_paths(event):
            refused += 1
            continue
        parse_payment(event)  # the contract accepts it too (raises otherwise)

    summary = (
        f"card-number precision: {refused} false rejections in {events} events "
        f"({', '.join(f'{len(v)} {k}' for k, v in kinds.items())}; each id used as an id and a "
        "metadata value)"
    )
    record_property("card_number_precision", summary)
    with capsys.disabled():
        print(f"\n{summary}")
    assert refused == 0


def test_a_sample_of_the_corpus_is_processed_by_the_service() -> None:
    """The same events through PaymentService (fakes): charges, each PROCESSED."""
    rng = random.Random(7)
    kinds = corpus(rng, 2_000)
    ids = [value for values in kinds.values() for value in values]
    ledger = FakeLedger()
    service = PaymentService(
        ledger=ledger,
        sessions=FakeSessions(),
        region_gate=FakeGate(),
        parking=FakeParking(),
        max_amount_minor=10**9,
        region="us-east-1",
    )
    outcomes = set()
    for shared_event in corpus_events(ids, kinds["EventBridge id"]):
        event = copy.deepcopy(shared_event)
        event["detail"]["type"] = "CHARGE"
        del event["detail"]["original_payment_id"]
        outcomes.add(service.handle(event).outcome.value)
    assert outcomes == {"PROCESSED"}
    assert len(ledger.rows) == len(ids)
