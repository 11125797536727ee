"""drctl switchover against moto (+ world.py's emulations): exact order (fence, promote,
control, secrets, unfence, redrive), refused while the old writer does not answer."""

from __future__ import annotations

import pytest

from shared import names
from tests.integration.drctl.project import ENV
from tests.integration.drctl.test_failover import _event
from tests.integration.drctl.world import GLOBAL, START_EPOCH, E, W, World

pytestmark = pytest.mark.integration


def _target(call: object) -> str:
    params = getattr(call, "params", {})
    for key in ("TableName", "Name", "FunctionName", "GlobalClusterIdentifier", "SecretId"):
        if key in params:
            return str(params[key])
    return ""


def test_switchover_in_exact_order_and_the_old_region_left_passive(world: World) -> None:
    world.send_to_standby(W, _event("pay-parked-while-passive"))

    result = world.h.drctl("switchover", "--yes", "--to", "secondary")

    assert result.code == 0, (result.err, world.errors)
    control = names.region_control_table(ENV)
    writes = [(c.operation, c.region, _target(c)) for c in world.h.recorder.writes()]
    expected_head = [
        ("PutItem", W, control),  # fence: none, the new region's replica first
        ("PutItem", E, control),
        # the old processor held at 0; no rule disabled: a planned change drops no event
        ("PutFunctionConcurrency", E, names.processor_function("primary", ENV)),
        ("SwitchoverGlobalCluster", W, GLOBAL),
        ("PutItem", W, control),  # active = the new region
        ("PutItem", E, control),
        ("PutSecretValue", E, names.app_secret(ENV)),  # the primary copy: it replicates
        ("PutSecretValue", E, names.master_secret(ENV)),
        ("PutFunctionConcurrency", E, names.processor_function("primary", ENV)),
    ]
    assert writes[: len(expected_head)] == expected_head
    assert {op for op, _, _ in writes[len(expected_head) :]} <= {
        "ReceiveMessage",
        "Invoke",
        "DeleteMessageBatch",
        "ChangeMessageVisibilityBatch",
    }
    puts = [c for c in world.h.recorder.writes() if c.operation == "PutItem"]
    assert [c.params["Item"]["active_region"]["S"] for c in puts] == ["none", "none", W, W]
    assert world.writer_region() == W
    for region in (E, W):
        held = world.control(region)
        assert held is not None and (held.active_region, held.epoch) == (W, START_EPOCH + 2)
    assert "pay-parked-while-passive" in world.ledger_ids()
    assert "PROCESSED 1" in result.err
    # The old region is passive, not fenced: it parks what it receives, for the next change.
    rule = world.h.client("events", E).describe_rule(
        Name=names.event_rule("primary", ENV), EventBusName=names.event_bus(ENV)
    )
    assert rule["State"] == "ENABLED"
    concurrency = world.h.client("lambda", E).get_function_concurrency(
        FunctionName=names.processor_function("primary", ENV)
    )
    assert concurrency["ReservedConcurrentExecutions"] == 25
    for step in ("fence", "promote", "control", "secrets", "unfence", "redrive"):
        assert step in result.out or step in result.err
    assert "total" in result.out


def test_switchover_is_refused_when_the_old_writer_does_not_answer(world: World) -> None:
    world.kill(E)

    result = world.h.drctl("switchover", "--yes", "--to", "secondary")

    assert result.code == 4
    assert "does not answer" in result.err and "drctl failover" in result.err
    assert world.h.recorder.writes() == []
    assert world.control(W).active_region == E  # type: ignore[union-attr]


def test_dry_run_checks_and_changes_nothing(world: World) -> None:
    result = world.h.drctl("switchover", "--dry-run")

    assert result.code == 0, result.err
    assert "us-east-1 -> us-west-2" in result.out and "nothing changed" in result.out
    assert world.h.recorder.writes() == []


def test_switchover_without_confirmation_changes_nothing(world: World) -> None:
    result = world.h.drctl("switchover", "--to", "secondary")  # stdin closed: no answer

    assert result.code == 4
    assert world.h.recorder.writes() == []
