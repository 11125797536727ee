"""drctl status (one bounded view of both regions, also with one of them down) and the
region-control item's epoch rule as drctl uses it: a stale writer cannot flip it back."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ops.drctl import control
from ops.drctl.console import Console
from ops.drctl.context import Context
from shared import names, region_control
from shared.region_control import RegionControl
from tests.integration.drctl.project import ENV
from tests.integration.drctl.world import START_EPOCH, E, W, World

pytestmark = pytest.mark.integration


def test_status_shows_both_regions(world: World) -> None:
    world.send_to_standby(W, {"detail": {}})

    result = world.h.drctl("status", "--json")

    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert (document["active_region"], document["epoch"]) == (E, START_EPOCH)
    assert document["control_replicas_agree"] is True
    assert document["aurora"]["writer_region"] == E
    west = document["regions"][W]
    assert west["queues"] == {"standby": 1, "rejected": 0, "dlq": 0, "failures": 0}
    assert west["health"] == "HEALTHY (200)"
    assert west["fence"] == {"rule": "ENABLED", "processor_concurrency": 25}
    assert west["lag_seconds"] == {"aurora": None, "dynamodb": None, "s3": None}  # no monitor yet
    assert "replica of us-east-1" in west["secrets"][names.app_secret(ENV)]
    # read only: the health checks are the only invocations
    assert {c.operation for c in world.h.recorder.writes()} == {"Invoke"}
    assert {f for _, f in world.invoked} == {
        names.health_function(r, ENV) for r in ("primary", "secondary")
    }


def test_status_shows_each_stores_lag_into_a_region_wherever_the_monitor_measured_it(
    world: World,
) -> None:
    """The ledger's end-to-end lag into us-west-2 is measured (and published) by the active
    region, Aurora's own figure by us-west-2: status reads both regions and prefers the canary."""
    from shared import metric_names

    def put(region: str, metric: str, store: str, value: float) -> None:
        world.h.client("cloudwatch", region).put_metric_data(
            Namespace=metric_names.NAMESPACE,
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": metric_names.dimensions(ENV, store, W),
                    "Value": value,
                    "Unit": "Seconds",
                }
            ],
        )

    put(E, metric_names.CANARY_LAG, "aurora", 0.4)
    put(W, metric_names.REPLICATION_LAG, "aurora", 0.9)
    put(E, metric_names.REPLICATION_LAG, "dynamodb", 1.2)

    result = world.h.drctl("status", "--json")

    assert result.code == 0, result.err
    lag = json.loads(result.out)["regions"][W]["lag_seconds"]
    assert lag == {"aurora": 0.4, "dynamodb": 1.2, "s3": None}


def test_status_with_a_dead_region_answers_with_one_attempt_per_call(world: World) -> None:
    world.kill(E)

    result = world.h.drctl("status")

    assert result.code == 0, result.err
    assert "active region us-east-1 (epoch 7)" in result.out  # from the survivor's replica
    east = result.out.split(f"{E} (primary)")[1].split(f"{W} (secondary)")[0]
    assert "unreachable" in east and "ConnectTimeoutError" in east
    assert world.attempts == Counter(
        (c.region, c.operation) for c in world.h.recorder.calls if c.region == E
    )


def test_a_writer_holding_an_older_epoch_cannot_flip_the_item_back(world: World) -> None:
    ctx = Context(env=ENV, aws=world.h.factory, console=Console())
    seen_by_old_operator = control.read_all(ctx, [W, E], bounded=False)
    # Meanwhile another operator fails over to us-west-2 (epoch 8).
    moved = control.move(ctx, W, must=W, also=[E], actor="operator 1")
    assert moved.target.epoch == START_EPOCH + 1

    with pytest.raises(control.StaleControl, match="moved meanwhile"):
        control.move(ctx, E, must=E, also=[W], actor="operator 2", readings=seen_by_old_operator)

    for region in (E, W):
        held = world.control(region)
        assert held is not None and (held.active_region, held.epoch) == (W, START_EPOCH + 1)


def test_a_replica_already_holding_the_state_is_left_unchanged(world: World) -> None:
    ctx = Context(env=ENV, aws=world.h.factory, console=Console())
    seen = control.read_all(ctx, [W, E], bounded=False)
    wanted = RegionControl(W, START_EPOCH + 1, "t", "replicated")
    world.h.client("dynamodb", E).put_item(
        TableName=names.region_control_table(ENV), Item=region_control.to_item(wanted)
    )  # global-table replication gets the same state to us-east-1 before drctl does

    moved = control.move(ctx, W, must=W, also=[E], actor="drctl test", readings=seen)

    assert moved.notes[1] == f"{E}: unchanged"
    assert world.control(E).updated_by == "replicated"  # type: ignore[union-attr]
