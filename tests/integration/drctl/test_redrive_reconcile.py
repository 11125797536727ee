"""drctl redrive and reconcile against moto and a real ledger, through the real processor and
ledger export (Lambda Invoke emulated in-process, world.py): counts by outcome, refunds after
their charges, and both directions of reconciliation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.drctl.redrive import event_in
from shared import names, region_control
from shared.names import Queue
from tests.conftest import load_event
from tests.integration.drctl.project import ENV
from tests.integration.drctl.world import START_EPOCH, E, World

pytestmark = pytest.mark.integration
PROCESSOR = names.processor_function("primary", ENV)


def charge(payment_id: str, amount: int = 1000, **extra: Any) -> dict[str, Any]:
    event = load_event("01_charge_usd.json")
    detail = {k: v for k, v in event["detail"].items() if k not in ("card", "metadata")}
    event["detail"] = {**detail, "payment_id": payment_id, "amount_minor": amount, **extra}
    return event


def refund(payment_id: str, original: str, amount: int) -> dict[str, Any]:
    event = charge(payment_id, amount, type="REFUND", original_payment_id=original)
    return event


def test_redrive_counts_by_outcome_and_lets_refunds_follow_their_charges(world: World) -> None:
    world.handlers[(E, PROCESSOR)](charge("pay-already"))  # the ledger has it
    world.send_to_standby(E, charge("pay-already"))
    world.send_to_standby(E, refund("rf-early", "pay-late", 400))  # before its charge
    world.send_to_standby(E, charge("pay-late"))
    world.send_to_standby(E, charge("pay-new"))
    invalid = charge("pay-bad")
    invalid["detail"]["amount_minor"] = 12.5
    world.send_to_standby(E, invalid)
    world.h.client("sqs", E).send_message(
        QueueUrl=world.queue_urls[E]["standby"], MessageBody="not json at all"
    )

    # One at a time, so the refund is replayed before its charge (concurrently it may not be).
    result = world.h.drctl("redrive", "--parallel", "1")

    assert result.code == 1, result.err  # something was left for a person: the odd message
    assert "5 replayed" not in result.out
    line = next(text for text in result.out.splitlines() if "replayed" in text)
    counts = dict(part.rsplit(" ", 1) for part in line.split("replayed: ", 1)[1].split(", "))
    # pass 1: DUPLICATE, PARKED (refund), PROCESSED x2, REJECTED; pass 2: the refund PROCESSED
    assert counts == {"DUPLICATE": "1", "PARKED": "1", "PROCESSED": "3", "REJECTED": "1"}
    assert "1 not an event" in result.out
    assert {"pay-already", "pay-late", "pay-new", "rf-early"} <= world.ledger_ids()
    assert "pay-bad" not in world.ledger_ids()
    assert world.depth(E, "standby") == 1  # the message that is not an event, kept
    assert world.depth(E, "rejected") == 1  # the invalid one, re-parked with its reason


def test_redrive_refuses_to_replay_into_a_region_that_is_not_active(world: World) -> None:
    for region in (E, "us-west-2"):
        world.h.client("dynamodb", region).put_item(
            TableName=names.region_control_table(ENV),
            Item=region_control.to_item(
                region_control.RegionControl("none", START_EPOCH + 1, "t", "test")
            ),
        )
    world.send_to_standby(E, charge("pay-waiting"))

    result = world.h.drctl("redrive")

    assert result.code == 4 and "no region is active" in result.err
    assert world.depth(E, "standby") == 1


def test_each_queue_format_yields_the_original_event() -> None:
    event = charge("pay-1")
    parked = {"outcome": "PARKED", "code": "REGION_PASSIVE", "reason": "r", "event": event}
    on_failure = {"version": "1.0", "requestContext": {}, "requestPayload": event}
    assert event_in(Queue.STANDBY, parked) == event
    assert event_in(Queue.REJECTED, parked) == event
    assert event_in(Queue.FAILURES, on_failure) == event
    assert event_in(Queue.DLQ, event) == event
    assert event_in(Queue.STANDBY, event) is None  # not a parked message
    assert event_in(Queue.DLQ, {"detail": {}}) is None


def _drop_ledger_row(world: World, payment_id: str) -> None:
    with world.ledger.root("payments") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ledger_entries WHERE payment_id = %s", (payment_id,))
        cur.execute("DELETE FROM payments WHERE payment_id = %s", (payment_id,))


def test_reconcile_finds_and_fixes_both_directions_and_lists_the_rest(world: World) -> None:
    process = world.handlers[(E, PROCESSOR)]
    for payment_id in ("pay-kept", "pay-lost-ledger", "pay-lost-session", "pay-too-rich"):
        extra = {"metadata": {"order": "o-1"}} if payment_id == "pay-too-rich" else {}
        assert process(charge(payment_id, **extra))["outcome"] == "PROCESSED"
    # An unplanned failover lost two ledger commits whose sessions items had replicated, and a
    # sessions write that never replicated.
    _drop_ledger_row(world, "pay-lost-ledger")
    _drop_ledger_row(world, "pay-too-rich")
    world.h.client("dynamodb", E).delete_item(
        TableName=names.sessions_table(ENV), Key={"payment_id": {"S": "pay-lost-session"}}
    )

    result = world.h.drctl("reconcile", "--since", "30d")

    assert result.code == 1, result.err  # one could not be fixed
    assert "ledger -> sessions: 1 projected again" in result.out
    assert "sessions -> ledger: replayed PROCESSED 1" in result.out
    assert "pay-too-rich: in sessions, not in the ledger" in result.out
    assert world.ledger_ids() == {"pay-kept", "pay-lost-ledger", "pay-lost-session"}
    assert {"pay-kept", "pay-lost-ledger", "pay-lost-session"} <= world.session_ids(E)
    # The ledger was read through the export function, page by page (2 rows a page here).
    exports = [f for r, f in world.invoked if f == names.ledger_export_function("primary", ENV)]
    assert len(exports) >= 2

    again = world.h.drctl("reconcile", "--since", "30d", "--no-fix")
    assert "0 projected again" in again.out and "replayed none" in again.out
    assert json.dumps(sorted(world.ledger_ids()))  # still the same three
