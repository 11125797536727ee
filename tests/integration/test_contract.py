"""The published event contract against the deployed shape: every payment sample in events/ is
delivered by the rule template.yaml declares (through moto's EventBridge, to an SQS target standing
in for the function), the other detail-type is not; each sample is an EventBridge event `sam local
invoke -e` can pass on; each invalid sample is REJECTED with a reason naming its field and parked
with that reason, card data masked."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.sandbox import resources
from payment_processor.handler import lambda_handler
from payment_processor.models import DETAIL_TYPE, EVENT_SOURCE
from tests.conftest import ENV, EVENTS, PRIMARY, ledger_rows, load_event

pytestmark = pytest.mark.integration

ALL_EVENT_FILES = sorted(path.name for path in EVENTS.glob("*.json"))
# The payment service's EventBridge samples are the numbered ones; other functions' events
# (Function URL, schedules) live beside them.
SAMPLES = [name for name in ALL_EVENT_FILES if re.match(r"[0-9]{2}_", name)]
PAYMENT_SAMPLES = [name for name in SAMPLES if int(name[:2]) <= 13]
OTHER_SAMPLES = [name for name in SAMPLES if int(name[:2]) == 14]
# invalid sample: (the field its reason must name, the parked code)
INVALID_SAMPLES = {
    "09_invalid_float_amount.json": ("amount_minor", "INVALID_EVENT"),
    "10_invalid_negative_amount.json": ("amount_minor", "INVALID_EVENT"),
    "11_invalid_unknown_currency.json": ("currency", "INVALID_EVENT"),
    "12_invalid_missing_payment_id.json": ("payment_id", "INVALID_EVENT"),
    "13_invalid_card_number_in_metadata.json": ("metadata", "CARD_NUMBER_IN_EVENT"),
}
ENVELOPE = {
    "version": str,
    "id": str,
    "detail-type": str,
    "source": str,
    "account": str,
    "time": str,
    "region": str,
    "resources": list,
    "detail": dict,
}


def test_the_samples_are_all_there() -> None:
    assert len(PAYMENT_SAMPLES) == 13
    assert OTHER_SAMPLES == ["14_other_detail_type.json"]


@pytest.mark.parametrize("name", ALL_EVENT_FILES)
def test_event_file_is_a_json_object(name: str) -> None:
    assert isinstance(json.loads((EVENTS / name).read_text()), dict)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_is_an_eventbridge_event(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    for key, kind in ENVELOPE.items():
        assert isinstance(event.get(key), kind), f"{name}: envelope field {key!r}"
    assert event["version"] == "0"
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", event["id"]), event["id"]
    assert re.fullmatch(r"[0-9]{12}", event["account"])
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", event["region"])
    assert datetime.fromisoformat(event["time"]).tzinfo is not None
    assert event["source"] == EVENT_SOURCE


def test_sample_event_ids_are_unique() -> None:
    ids = [load_event(name)["id"] for name in SAMPLES]
    assert len(ids) == len(set(ids))


@pytest.fixture
def rule_inbox() -> Any:
    """The bus and the processor's rule from template.yaml, with an SQS target."""
    with mock_aws():
        events = boto3.client("events", region_name=PRIMARY)
        sqs = boto3.client("sqs", region_name=PRIMARY)
        inbox = resources.create_bus_with_rule(events, sqs, "primary", ENV)
        yield events, sqs, inbox


def _publish_and_collect(rule_inbox: Any, name: str) -> list[dict[str, Any]]:
    events, sqs, inbox = rule_inbox
    sample = load_event(name)
    answer = events.put_events(
        Entries=[
            {
                "EventBusName": f"dr-payment-bus-{ENV}",
                "Source": sample["source"],
                "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]),
                "Resources": sample["resources"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer
    delivered = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in delivered]


def test_the_rule_pattern_is_the_contracts() -> None:
    pattern = resources.rule_pattern()
    assert pattern["source"] == [EVENT_SOURCE]
    assert pattern["detail-type"] == [DETAIL_TYPE]


@pytest.mark.parametrize("name", PAYMENT_SAMPLES)
def test_payment_sample_matches_the_rule(rule_inbox: Any, name: str) -> None:
    delivered = _publish_and_collect(rule_inbox, name)
    assert len(delivered) == 1, f"{name} was not delivered by the rule"
    assert delivered[0]["detail"] == load_event(name)["detail"]
    assert delivered[0]["detail-type"] == DETAIL_TYPE


@pytest.mark.parametrize("name", OTHER_SAMPLES)
def test_other_detail_type_does_not_match_the_rule(rule_inbox: Any, name: str) -> None:
    assert _publish_and_collect(rule_inbox, name) == []


# -- invalid samples: rejected, reason names the field, parked with that reason ----------------

_PAN_CANDIDATE = re.compile(r"[0-9](?:[ -]?[0-9]){12,18}")


def _luhn_valid_pans(text: str) -> list[str]:
    found = []
    for match in _PAN_CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        total = sum(
            (d if i % 2 == 0 else (2 * d if d < 5 else 2 * d - 9))
            for i, d in enumerate(int(c) for c in reversed(digits))
        )
        if total % 10 == 0:
            found.append(match.group())
    return found


@pytest.mark.parametrize("name", sorted(INVALID_SAMPLES))
def test_invalid_sample_is_rejected_and_parked_with_its_reason(
    sandbox: Any, lambda_context: Any, name: str
) -> None:
    field, code = INVALID_SAMPLES[name]
    result = lambda_handler(load_event(name), lambda_context)

    assert result["outcome"] == "REJECTED"
    assert result["reason"].startswith(f"{code}: ")
    assert field in result["reason"], f"{name}: reason does not name {field!r}: {result}"
    parked = sandbox.parked()
    assert len(parked) == 1
    assert (parked[0]["outcome"], parked[0]["code"]) == ("REJECTED", code)
    assert f"{parked[0]['code']}: {parked[0]['reason']}" == result["reason"]
    assert parked[0]["event"]["id"] == load_event(name)["id"]
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sandbox.dynamodb.scan(TableName=sandbox.env["SESSIONS_TABLE"])["Count"] == 0


def test_card_number_is_masked_in_the_parked_event(sandbox: Any, lambda_context: Any) -> None:
    name = "13_invalid_card_number_in_metadata.json"
    sample = load_event(name)
    assert _luhn_valid_pans(json.dumps(sample)) == ["4111 1111 1111 1111"]  # the plant is there
    result = lambda_handler(sample, lambda_context)

    assert result["outcome"] == "REJECTED"
    assert _luhn_valid_pans(json.dumps(result)) == []
    (parked,) = sandbox.parked()
    assert (parked["outcome"], parked["code"]) == ("REJECTED", "CARD_NUMBER_IN_EVENT")
    body = json.dumps(parked)
    assert _luhn_valid_pans(body) == [], body
    assert "4111" not in parked["event"]["detail"]["metadata"]["note"]
    # Masked, not dropped: the rest of the event is kept for the operator.
    assert parked["event"]["detail"]["payment_id"] == sample["detail"]["payment_id"]
    assert parked["event"]["detail"]["metadata"]["note"].endswith("exp 12/29")
