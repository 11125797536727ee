"""drctl teardown against moto: the exact order of operations, idempotency, guards, buckets."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ops.drctl.console import Console
from ops.drctl.context import Context
from ops.drctl.storage import empty_bucket
from tests.integration.drctl.conftest import Call, Harness
from tests.integration.drctl.environment import (
    CLUSTERS,
    DOCS,
    GLOBAL,
    TABLES,
    WRITER_INSTANCE,
    deploy_everything,
    versions,
)
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, SECONDARY

E, W = PRIMARY, SECONDARY
CONTROL, SESSIONS = TABLES[1], TABLES[0]


def stack(stack_id: str) -> str:
    return f"dr-payment-{stack_id}-{ENV}"


def _target(call: Call) -> str:
    params = call.params
    for key in (
        "StackName",
        "TableName",
        "Bucket",
        "Name",
        "FunctionName",
        "DbClusterIdentifier",
        "DBInstanceIdentifier",
        "DBClusterIdentifier",
        "GlobalClusterIdentifier",
    ):
        if key in params:
            value = str(params[key])
            if value.startswith("arn:aws:cloudformation"):
                return value.split("/")[1]  # the stack name inside a stack id
            return value.split(":")[-1] if value.startswith("arn:") else value
    return ""


def writes(h: Harness) -> list[tuple[str, str, str]]:
    return [(c.operation, c.region, _target(c)) for c in h.recorder.writes()]


def expected_sequence(*, snapshots: bool) -> list[tuple[str, str, str]]:
    fence = [
        ("PutItem", E, CONTROL),
        ("PutItem", W, CONTROL),
        ("DisableRule", E, f"dr-payment-event-rule-primary-{ENV}"),
        ("PutFunctionConcurrency", E, f"dr-payment-processor-primary-{ENV}"),
        ("DisableRule", W, f"dr-payment-event-rule-secondary-{ENV}"),
        ("PutFunctionConcurrency", W, f"dr-payment-processor-secondary-{ENV}"),
    ]
    front = [
        ("DeleteStack", E, stack("dns")),
        ("DeleteStack", W, f"dr-payment-secondary-{ENV}"),
        ("DeleteStack", E, f"dr-payment-primary-{ENV}"),
    ]
    global_cluster = [
        ("RemoveFromGlobalCluster", W, CLUSTERS["secondary"]),  # in the member's region
        ("RemoveFromGlobalCluster", E, CLUSTERS["primary"]),
        ("ModifyGlobalCluster", E, GLOBAL),  # deletion protection off
        ("DeleteGlobalCluster", E, GLOBAL),
    ]
    aurora = [
        ("ModifyDBCluster", W, CLUSTERS["secondary"]),
        ("DeleteDBCluster", W, CLUSTERS["secondary"]),
        ("DeleteStack", W, stack("aurora-secondary")),
        ("ModifyDBCluster", E, CLUSTERS["primary"]),
        ("DeleteDBInstance", E, WRITER_INSTANCE),
        ("DeleteDBCluster", E, CLUSTERS["primary"]),
        ("DeleteStack", E, stack("aurora-primary")),
    ]
    buckets = [
        ("PutBucketLogging", E, DOCS["primary"]),
        ("PutBucketLogging", W, DOCS["secondary"]),
        ("DeleteObjects", E, DOCS["primary"]),
    ]
    tables = []
    for table in (CONTROL, SESSIONS):
        tables += [("UpdateTable", E, table), ("UpdateTable", W, table)]
        tables += [("CreateBackup", E, table)] if snapshots else []
    remaining = [
        ("DeleteStack", region, stack(stack_id))
        for stack_id, region in [
            ("budget", E),
            ("params-secondary", W),
            ("params-primary", E),
            ("buckets-primary", E),
            ("buckets-secondary", W),
            ("data", E),
        ]
    ]
    retained = [
        ("DeleteTable", W, CONTROL),
        ("DeleteTable", E, CONTROL),
        ("DeleteTable", W, SESSIONS),
        ("DeleteTable", E, SESSIONS),
        ("DeleteBucket", E, DOCS["primary"]),
        ("DeleteBucket", W, DOCS["secondary"]),
    ]
    last = [
        ("DeleteStack", region, stack(stack_id))
        for stack_id, region in [
            ("keys-secondary", W),
            ("keys-primary", E),
            ("peering-routes", W),
            ("peering", E),
            ("network-secondary", W),
            ("network-primary", E),
        ]
    ]
    return fence + front + global_cluster + aurora + buckets + tables + remaining + retained + last


@pytest.fixture
def deployed(harness: Harness) -> Harness:
    deploy_everything(harness)
    harness.recorder.clear()
    return harness


def test_teardown_runs_every_step_in_order(deployed: Harness) -> None:
    h = deployed
    result = h.drctl("teardown", "--yes")

    assert result.code == 0, result.err
    assert writes(h) == expected_sequence(snapshots=True)
    snapshots = {
        c.params["DBClusterIdentifier"]: c.params.get("FinalDBSnapshotIdentifier")
        for c in h.recorder.calls
        if c.operation == "DeleteDBCluster"
    }
    assert all(name and name.startswith(f"{cluster}-final-") for cluster, name in snapshots.items())


def test_teardown_leaves_nothing_behind(deployed: Harness) -> None:
    h = deployed
    assert h.drctl("teardown", "--yes").code == 0

    for region in (E, W):
        live = [
            s["StackName"]
            for s in h.client("cloudformation", region).describe_stacks()["Stacks"]
            if s["StackStatus"] != "DELETE_COMPLETE"
        ]
        assert live == []
        assert h.client("dynamodb", region).list_tables()["TableNames"] == []
        assert h.client("rds", region).describe_db_clusters()["DBClusters"] == []
    assert h.client("s3").list_buckets()["Buckets"] == []
    assert h.client("rds").describe_global_clusters()["GlobalClusters"] == []
    snapshots = h.client("rds").describe_db_cluster_snapshots()["DBClusterSnapshots"]
    assert [
        s["DBClusterIdentifier"] for s in snapshots if "-final-" in s["DBClusterSnapshotIdentifier"]
    ] == [CLUSTERS["primary"]]
    backups = h.client("dynamodb").list_backups()["BackupSummaries"]
    assert sorted(b["TableName"] for b in backups) == sorted(TABLES)


def test_the_fence_is_written_before_anything_is_deleted(deployed: Harness) -> None:
    h = deployed
    h.add_hook(_fail_on("DeleteStack", stack("dns")))

    result = h.drctl("teardown", "--yes")

    assert result.code == 1
    item = h.client("dynamodb", W).get_item(TableName=CONTROL, Key={"pk": {"S": "active-region"}})[
        "Item"
    ]
    assert item["active_region"] == {"S": "none"} and item["epoch"] == {"N": "8"}
    assert item["updated_by"] == {"S": "drctl teardown"}
    rule = h.client("events", E).describe_rule(
        Name=f"dr-payment-event-rule-primary-{ENV}", EventBusName=f"dr-payment-bus-{ENV}"
    )
    assert rule["State"] == "DISABLED"
    concurrency = h.client("lambda", W).get_function_concurrency(
        FunctionName=f"dr-payment-processor-secondary-{ENV}"
    )
    assert concurrency["ReservedConcurrentExecutions"] == 0


def test_skip_final_snapshot_takes_no_snapshots_nor_backups(deployed: Harness) -> None:
    h = deployed
    result = h.drctl("teardown", "--yes", "--skip-final-snapshot")

    assert result.code == 0, result.err
    assert writes(h) == expected_sequence(snapshots=False)
    deletes = [c.params for c in h.recorder.calls if c.operation == "DeleteDBCluster"]
    assert all(p.get("SkipFinalSnapshot") is True for p in deletes)
    assert "FinalDBSnapshotIdentifier" not in str(deletes)


def _fail_on(operation: str, target: str) -> Any:
    """A before-call hook that makes one operation on one target fail, once."""
    state = {"done": False}

    def hook(client: Any, service: str, region: str) -> None:
        def fail(model: Any, context: dict[str, Any], **_: Any) -> None:
            call = Call(service, region, model.name, context.get("drctl_test_params", {}))
            if not state["done"] and model.name == operation and _target(call) == target:
                state["done"] = True
                raise ClientError(
                    {"Error": {"Code": "Throttling", "Message": "injected"}}, operation
                )

        client.meta.events.register("before-call", fail)

    return hook


def test_a_rerun_after_a_partial_teardown_finishes_the_job(deployed: Harness) -> None:
    h = deployed
    h.add_hook(_fail_on("DeleteStack", stack("data")))
    first = h.drctl("teardown", "--yes")
    assert first.code == 1
    assert "injected" in first.err
    h.recorder.clear()

    second = h.drctl("teardown", "--yes", "--skip-final-snapshot")

    assert second.code == 0, second.err
    done = writes(h)
    # what the first run finished is not touched again: no cluster, no SAM stack, no bucket
    # objects left to delete; the run picks up at the data stack
    assert not [w for w in done if w[0] in ("DeleteDBCluster", "RemoveFromGlobalCluster")]
    assert ("DeleteStack", E, stack("dns")) not in done
    assert ("DeleteStack", E, stack("data")) in done
    assert ("DeleteStack", E, stack("network-primary")) == done[-1]
    assert h.client("s3").list_buckets()["Buckets"] == []


def test_a_second_teardown_finds_nothing_to_delete(deployed: Harness) -> None:
    h = deployed
    assert h.drctl("teardown", "--yes").code == 0
    h.recorder.clear()

    again = h.drctl("teardown", "--yes")

    assert again.code == 0, again.err
    operations = {operation for operation, _, _ in writes(h)}
    # only the blind, tolerant attempts come again (each answered "not found")
    assert operations <= {"PutItem", "DisableRule", "PutFunctionConcurrency", "PutBucketLogging"}


def test_prod_is_refused_without_the_explicit_flag_before_any_aws_call(harness: Harness) -> None:
    result = harness.drctl("teardown", "--yes", "--skip-final-snapshot", env="prod")

    assert result.code == 4
    assert "--i-mean-it-delete-prod" in result.err
    assert harness.recorder.calls == []


def test_teardown_asks_and_a_wrong_answer_changes_nothing(deployed: Harness) -> None:
    h = deployed
    h.answers = ["yes"]  # not the environment name

    result = h.drctl("teardown")

    assert result.code == 4
    assert h.recorder.writes() == []


def test_teardown_proceeds_when_the_environment_name_is_typed(deployed: Harness) -> None:
    h = deployed
    h.answers = [ENV]
    assert h.drctl("teardown", "--skip-final-snapshot").code == 0


def test_no_answer_means_no(deployed: Harness) -> None:
    assert deployed.drctl("teardown").code == 4  # stdin closed: EOFError
    assert deployed.recorder.writes() == []


def test_emptying_a_bucket_removes_every_version_and_delete_marker(harness: Harness) -> None:
    s3 = harness.client("s3", W)
    bucket = f"dr-payment-docs-secondary-{ENV}-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": W})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(7):
        s3.put_object(Bucket=bucket, Key=f"doc-{i % 3}", Body=str(i).encode())
    for i in range(3):
        s3.delete_object(Bucket=bucket, Key=f"doc-{i}")  # delete markers
    assert versions(harness, "secondary") == 10
    ctx = Context(env=ENV, aws=harness.factory, console=Console(), sleep=lambda _: None)

    deleted = empty_bucket(ctx, W, bucket, batch_size=4)

    assert deleted == 10
    assert harness.recorder.count("DeleteObjects") == 3  # 4 + 4 + 2
    assert versions(harness, "secondary") == 0
    s3.delete_bucket(Bucket=bucket)  # an empty versioned bucket can go
    assert empty_bucket(ctx, W, bucket) == -1  # and a missing one is no error
