"""drctl failback against moto (+ world.py's emulations): after a managed failover the old
primary is a secondary again and it is a planned switchover back; after a detach-and-promote
the stale cluster is kept as a final snapshot and rebuilt as a secondary first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import names
from tests.integration.drctl.project import ENV
from tests.integration.drctl.test_failover import _event, _index
from tests.integration.drctl.world import GLOBAL, START_EPOCH, E, W, World

pytestmark = pytest.mark.integration


def _fail_over(world: World, *, refuse: str | None = None) -> None:
    world.refuse_failover = refuse
    world.kill(E)
    assert world.h.drctl("failover", "--yes", "--to", W).code == 0
    world.dead.clear()  # the region comes back
    world.h.recorder.clear()


def test_failback_after_a_managed_failover_is_a_planned_switchover_back(world: World) -> None:
    _fail_over(world)
    world.send_to_standby(E, _event("pay-parked-in-the-returning-region"))

    result = world.h.drctl("failback", "--yes")

    assert result.code == 0, (result.err, world.errors)
    writes = world.h.recorder.writes()
    # The returning region is fenced before anything else, then the usual switchover steps.
    assert writes[0].operation == "PutFunctionConcurrency" and writes[0].region == E
    assert writes[0].params["ReservedConcurrentExecutions"] == 0
    switch = _index(writes, "SwitchoverGlobalCluster")
    assert (
        writes[switch].params["TargetDbClusterIdentifier"].endswith(names.cluster("primary", ENV))
    )
    assert "CreateGlobalCluster" not in {c.operation for c in writes}  # nothing rebuilt
    # Secrets: us-east-1 is the primary copy again, replicated over us-west-2's standalone copy.
    replicate = _index(writes, "ReplicateSecretToRegions", E)
    assert writes[replicate].params["ForceOverwriteReplicaSecret"] is True
    assert switch < replicate
    assert world.writer_region() == E
    held = world.control(E)
    assert held is not None and held.active_region == E and held.epoch == START_EPOCH + 4
    assert "pay-parked-in-the-returning-region" in world.ledger_ids()
    concurrency = world.h.client("lambda", E).get_function_concurrency(
        FunctionName=names.processor_function("primary", ENV)
    )
    assert concurrency["ReservedConcurrentExecutions"] == 25  # unfenced


def test_failback_after_detach_and_promote_keeps_the_stale_cluster_as_a_snapshot(
    world: World, tmp_path: Any
) -> None:
    _fail_over(world, refuse="InvalidGlobalClusterStateFault")
    world.forget_automated_snapshots(E)
    report = tmp_path / "failback.json"

    result = world.h.drctl("failback", "--yes", "--report", str(report))

    assert result.code == 0, (result.err, world.errors)
    writes = world.h.recorder.writes()
    operations = [(c.operation, c.region) for c in writes]
    delete = operations.index(("DeleteDBCluster", E))
    assert (
        writes[delete]
        .params["FinalDBSnapshotIdentifier"]
        .startswith(f"{names.cluster('primary', ENV)}-stale-")
    )
    assert "SkipFinalSnapshot" not in writes[delete].params
    assert (
        operations.index(("RemoveFromGlobalCluster", E))
        < operations.index(("DeleteGlobalCluster", E))
        < delete
        < operations.index(("CreateGlobalCluster", W))
        < operations.index(("CreateDBCluster", E))
        < operations.index(("SwitchoverGlobalCluster", E))
    )
    snapshot = world.h.client("rds", E).describe_db_cluster_snapshots(
        DBClusterSnapshotIdentifier=writes[delete].params["FinalDBSnapshotIdentifier"]
    )["DBClusterSnapshots"]
    assert snapshot and snapshot[0]["Status"] == "available"
    assert world.writer_region() == E
    # Both regions' functions follow the new global cluster's writer endpoint again.
    endpoint = world._global_cluster(GLOBAL).endpoint
    for region, role in ((E, "primary"), (W, "secondary")):
        live = world.h.client("lambda", region).get_function_configuration(
            FunctionName=names.processor_function(role, ENV), Qualifier=names.PROCESSOR_ALIAS
        )
        assert live["Environment"]["Variables"]["DB_HOST"] == endpoint
    document = json.loads(report.read_text())
    assert document["case"] == "B"
    assert [s["id"] for s in document["steps"]][:4] == [
        "check",
        "fence-returning",
        "rebuild",
        "endpoint",
    ]


def test_failback_refuses_while_the_old_region_is_still_down(world: World) -> None:
    world.kill(E)
    assert world.h.drctl("failover", "--yes", "--to", W).code == 0
    world.h.recorder.clear()

    result = world.h.drctl("failback", "--yes")

    assert result.code == 4 and "does not answer" in result.err
    assert [c for c in world.h.recorder.writes() if c.region == W] == []


def test_fence_only_stops_a_returning_region_from_writing_and_changes_nothing_else(
    world: World,
) -> None:
    _fail_over(world)

    result = world.h.drctl("failback", "--fence-only")  # no confirmation: it only protects

    assert result.code == 0, result.err
    writes = [(c.operation, c.region) for c in world.h.recorder.writes()]
    assert writes == [("PutFunctionConcurrency", E), ("PutItem", E)]
    held = world.control(E)
    assert held is not None and (held.active_region, held.epoch) == (W, START_EPOCH + 2)
    assert world.writer_region() == W


def test_a_failback_drops_no_event_on_the_way(world: World) -> None:
    """A disabled rule drops what it would deliver (EventBridge keeps nothing for it): with the
    returning region's rule off and the survivor's turned off for the switch back, an event
    published to the first just before its rule came back reached the second by replication
    just after its rule went off, and was lost in both (the drill lost 38 payments so). A
    planned change fences with the processor held at 0 instead (Lambda keeps and retries its
    events), and turns back on a rule the failover's fence left off, before anything else."""
    rule = {"Name": names.event_rule("primary", ENV), "EventBusName": names.event_bus(ENV)}
    _fail_over(world)
    world.h.client("events", E).disable_rule(**rule)  # what failover's fence does if E answers
    assert world.h.drctl("failback", "--fence-only").code == 0
    assert world.h.drctl("failback", "--yes").code == 0

    writes = world.h.recorder.writes()
    assert "DisableRule" not in {c.operation for c in writes}
    operations = [(c.operation, c.region) for c in writes]
    assert operations.index(("EnableRule", E)) < operations.index(("PutFunctionConcurrency", W))
    held = [
        c.params["ReservedConcurrentExecutions"]
        for c in writes
        if c.operation == "PutFunctionConcurrency" and c.region == E
    ]
    assert held[0] == 0 and held[-1] == 25  # held at 0 until the unfence step
    for region in (E, W):
        state = world.h.client("events", region).describe_rule(
            Name=names.event_rule("primary" if region == E else "secondary", ENV),
            EventBusName=names.event_bus(ENV),
        )["State"]
        assert state == "ENABLED"
