"""Fencing: stop a region from taking writes (teardown now; failover/switchover later).

Three independent locks, each tolerant of the resource being absent: the region-control item
says no region is active, the payment event rule is disabled, and the processor's reserved
concurrency is 0 (in-flight invocations finish; no new ones start).
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from ops.drctl import names
from ops.drctl.context import Context

_MISSING = {"ResourceNotFoundException"}


def _absent(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def set_active_region(ctx: Context, region: str, active: str, actor: str) -> bool:
    """Write the control item in `region`'s replica; False if the table is not there."""
    try:
        ctx.aws.client("dynamodb", region).update_item(
            TableName=names.region_control_table(ctx.env),
            Key={"pk": {"S": names.CONTROL_ITEM_KEY}},
            UpdateExpression="SET active_region = :active, updated_at = :at, updated_by = :by "
            "ADD epoch :one",
            ExpressionAttributeValues={
                ":active": {"S": active},
                ":at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                ":by": {"S": actor},
                ":one": {"N": "1"},
            },
        )
    except ClientError as exc:
        if _absent(exc):
            return False
        raise
    return True


def disable_event_rule(ctx: Context, role: str, region: str) -> bool:
    try:
        ctx.aws.client("events", region).disable_rule(
            Name=names.event_rule(role, ctx.env), EventBusName=names.event_bus(ctx.env)
        )
    except ClientError as exc:
        if _absent(exc):
            return False
        raise
    return True


def stop_processor(ctx: Context, role: str, region: str) -> bool:
    try:
        ctx.aws.client("lambda", region).put_function_concurrency(
            FunctionName=names.processor_function(role, ctx.env), ReservedConcurrentExecutions=0
        )
    except ClientError as exc:
        if _absent(exc):
            return False
        raise
    return True


def fence_all(ctx: Context, regions_by_role: dict[str, str], actor: str) -> None:
    """Fence both regions. The control item is written in each replica: the sandbox does not
    replicate, and in AWS two identical last-writer-wins writes converge."""
    for role, region in regions_by_role.items():
        done = set_active_region(ctx, region, names.FENCED, actor)
        ctx.console.progress(
            f"    {region}: region-control active_region={names.FENCED}"
            if done
            else f"    {region}: no region-control table ({role})"
        )
    for role, region in regions_by_role.items():
        rule = disable_event_rule(ctx, role, region)
        processor = stop_processor(ctx, role, region)
        ctx.console.progress(
            f"    {region}: event rule {'disabled' if rule else 'absent'}, "
            f"processor {'concurrency 0' if processor else 'absent'}"
        )
