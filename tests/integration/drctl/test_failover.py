"""drctl failover against moto (+ the emulations in world.py) and a real ledger: the fence comes
before the promotion, the dead region costs one attempt per call, a refused managed failover
takes detach-and-promote, and what the survivor set aside is redriven and reconciled."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from shared import names
from tests.conftest import load_event
from tests.integration.drctl.conftest import Call
from tests.integration.drctl.project import ENV
from tests.integration.drctl.world import GLOBAL, START_EPOCH, E, W, World

pytestmark = pytest.mark.integration


def _index(calls: list[Call], operation: str, region: str | None = None) -> int:
    for i, call in enumerate(calls):
        if call.operation == operation and (region is None or call.region == region):
            return i
    raise AssertionError(f"{operation} ({region}) never called: {[c.operation for c in calls]}")


def _event(payment_id: str, **detail: Any) -> dict[str, Any]:
    event = load_event("01_charge_usd.json")
    event["detail"] = {**event["detail"], "payment_id": payment_id, **detail}
    return event


def test_failover_fences_then_promotes_with_one_attempt_per_call_to_the_dead_region(
    world: World,
) -> None:
    world.send_to_standby(W, _event("pay-standby-1"))
    world.kill(E)

    result = world.h.drctl("failover", "--yes", "--to", "secondary")

    assert result.code == 0, (result.err, world.errors)
    calls = world.h.recorder.calls
    writes = [c for c in calls if c.is_write]
    fence_first = _index(writes, "PutItem", W)
    promote = _index(writes, "FailoverGlobalCluster", W)
    assert writes[fence_first].params["Item"]["active_region"] == {"S": "none"}
    assert fence_first < _index(writes, "DisableRule", E) < promote
    assert _index(writes, "PutFunctionConcurrency", E) < promote
    active = [
        i
        for i, c in enumerate(writes)
        if c.operation == "PutItem" and c.params["Item"]["active_region"] == {"S": W}
    ]
    assert active and promote < active[0] < _index(writes, "DeleteMessageBatch", W)
    # Every call to the dead region: exactly one attempt (no retries), so seconds in all.
    assert world.attempts, "the dead region was not called at all"
    assert world.attempts == Counter((c.region, c.operation) for c in calls if c.region == E)
    # The end state.
    survivor = world.control(W)
    assert survivor is not None and (survivor.active_region, survivor.epoch) == (W, START_EPOCH + 2)
    assert world.writer_region() == W
    assert "pay-standby-1" in world.ledger_ids()
    assert world.depth(W, "standby") == 0
    secret = world.h.client("secretsmanager", W).describe_secret(SecretId=names.app_secret(ENV))
    assert "PrimaryRegion" not in secret or secret["PrimaryRegion"] == W
    assert "UNREACHABLE" in result.err and "failover-global-cluster" in result.out
    # Rotation moves with the writer: the survivor's rotation stack, once its secrets are
    # promoted (a replica cannot carry a schedule), after the payments are flowing again.
    survivor = f"dr-payment-secrets-rotation-secondary-{ENV}"
    made = _index(writes, "CreateChangeSet", W)
    assert writes[made].params["StackName"] == survivor
    assert _index(writes, "StopReplicationToReplica", W) < made
    assert promote < made and _index(writes, "DeleteMessageBatch", W) < made
    assert _index(writes, "ExecuteChangeSet", W) > made
    assert not [c for c in calls if c.service == "cloudformation" and c.region == E]
    assert "rotation" in result.out and "secret rotation moves to us-west-2" in result.err


def test_the_survivors_rotation_rotates_its_own_copies_against_its_own_cluster(
    world: World,
) -> None:
    world.kill(E)

    assert world.h.drctl("failover", "--yes", "--to", W).code == 0

    secrets = world.h.client("secretsmanager", W)
    master = secrets.describe_secret(SecretId=names.master_secret(ENV))["ARN"]
    app = secrets.describe_secret(SecretId=names.app_secret(ENV))["ARN"]
    assert f":{W}:" in master and f":{W}:" in app
    inputs = world.h.client("ssm", W).get_parameter(Name=f"/it/{ENV}/rotation-secondary")
    assert inputs["Parameter"]["Value"].split() == [
        master,
        app,
        f"arn:aws:kms:{W}:123456789012:key/keys-secondary",
        names.cluster("secondary", ENV),
        "subnet-a-network-secondary,subnet-b-network-secondary",
        "sg-lambda-network-secondary",
    ]
    # The alternating-users rotation finds the master secret through `masterarn`: the survivor's.
    value = json.loads(secrets.get_secret_value(SecretId=names.app_secret(ENV))["SecretString"])
    assert value["masterarn"] == master


def test_the_stand_in_rotation_template_takes_the_real_ones_parameters() -> None:
    from ops.drctl.template import load_template, parse_template
    from tests.conftest import ROOT
    from tests.integration.drctl.world import ROTATION_TEMPLATE

    real = load_template(ROOT / "infra-global" / "secrets-rotation.yaml").parameters
    stand_in = parse_template(ROTATION_TEMPLATE)["Parameters"]
    assert {k: v.type for k, v in real.items()} == {k: v["Type"] for k, v in stand_in.items()}


def test_a_refused_managed_failover_takes_detach_and_promote(world: World, tmp_path: Any) -> None:
    world.refuse_failover = "InvalidGlobalClusterStateFault"
    world.kill(E)
    report = tmp_path / "failover.json"

    result = world.h.drctl("failover", "--yes", "--to", W, "--report", str(report))

    assert result.code == 0, result.err
    writes = world.h.recorder.writes()
    failover = _index(writes, "FailoverGlobalCluster", W)
    detach = _index(writes, "RemoveFromGlobalCluster", W)
    assert failover < detach
    assert writes[detach].params == {
        "GlobalClusterIdentifier": GLOBAL,
        "DbClusterIdentifier": writes[failover].params["TargetDbClusterIdentifier"],
    }
    # The global endpoint no longer leads to the promoted cluster: the survivor's functions and
    # the parameter its next deploy reads now name the cluster itself.
    cluster = world.h.client("rds", W).describe_db_clusters(
        DBClusterIdentifier=names.cluster("secondary", ENV)
    )["DBClusters"][0]
    ssm = world.h.client("ssm", W).get_parameter(Name=names.writer_endpoint_parameter(ENV))
    assert ssm["Parameter"]["Value"] == cluster["Endpoint"]
    live = world.h.client("lambda", W).get_function_configuration(
        FunctionName=names.processor_function("secondary", ENV), Qualifier=names.PROCESSOR_ALIAS
    )
    assert live["Environment"]["Variables"]["DB_HOST"] == cluster["Endpoint"]
    schema = world.h.client("lambda", W).get_function_configuration(
        FunctionName=names.schema_migration_function("secondary", ENV)
    )
    assert schema["Environment"]["Variables"]["DB_HOST"] == cluster["Endpoint"]
    document = json.loads(report.read_text())
    assert document["promotion"] == "detach-and-promote"
    steps = [step["id"] for step in document["steps"]]
    assert steps == [
        "check", "fence", "promote", "endpoint", "control", "secrets", "unfence", "redrive",
        "reconcile", "rotation",
    ]  # fmt: skip
    assert all(step["ended_at"] >= step["started_at"] for step in document["steps"])
    assert world.control(W).active_region == W  # type: ignore[union-attr]


def test_failover_run_again_finishes_without_promoting_twice(world: World) -> None:
    world.kill(E)
    assert world.h.drctl("failover", "--yes", "--to", W).code == 0
    world.h.recorder.clear()

    again = world.h.drctl("failover", "--yes", "--to", W)

    assert again.code == 0, again.err
    operations = [c.operation for c in world.h.recorder.writes()]
    assert "FailoverGlobalCluster" not in operations and "RemoveFromGlobalCluster" not in operations
    assert "ExecuteChangeSet" not in operations  # the survivor's rotation stack: unchanged
    assert world.control(W).epoch == START_EPOCH + 3  # type: ignore[union-attr]


def test_after_a_failover_the_survivors_function_migrates_the_ledger(world: World) -> None:
    """`drctl migrate` (and the next deploy) goes to the survivor's SchemaMigrationFunction,
    which reads the master secret from the survivor's promoted copy: the real handler, in-process,
    on the real ledger, with the failed region still dead."""
    from schema_migration.handler import respond
    from schema_migration.wiring import build_schema
    from shared import config
    from tests.conftest import APP_USER, LambdaContextStub

    world.kill(E)
    assert world.h.drctl("failover", "--yes", "--to", W).code == 0

    def handler(region: str, event: Any) -> Any:
        settings = config.load(
            config.SchemaMigrationSettings,
            {
                "ENVIRONMENT": ENV,
                "REGION_ROLE": "secondary",
                "AWS_REGION": region,
                "DB_HOST": "127.0.0.1",
                "DB_PORT": str(world.ledger.port),
                "DB_NAME": "payments",
                "DB_SECRET_ID": names.master_secret(ENV),
                "APP_SECRET_ID": names.app_secret(ENV),
                "DB_TLS": "false",
            },
        )
        return respond(event, LambdaContextStub(), schema=build_schema(settings), deadline_margin=1)

    world.h.schema.handler = handler

    result = world.h.drctl("migrate")

    assert result.code == 0, result.err
    assert world.h.schema.calls == [
        (W, names.schema_migration_function("secondary", ENV), {"action": "apply"})
    ]
    assert "nothing was pending" in result.out
    assert f"application user {APP_USER}: password and grants ensured" in result.out
