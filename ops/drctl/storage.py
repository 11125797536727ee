"""S3 buckets and DynamoDB tables at teardown: emptied, unprotected, deleted; idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl.context import Context
from ops.drctl.errors import DrctlError
from ops.drctl.waiting import WaitPolicy, poll

DELETE_BATCH = 1000  # DeleteObjects limit
TABLE_WAIT = WaitPolicy(delay=10, max_attempts=90)  # 15 min
_NO_BUCKET = {"NoSuchBucket", "404", "NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _versions(s3: Any, bucket: str) -> Iterator[dict[str, str]]:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            yield {"Key": item["Key"], "VersionId": item["VersionId"]}


def _delete_batch(s3: Any, bucket: str, batch: list[dict[str, str]]) -> None:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    errors = answer.get("Errors", [])
    if errors:
        first = errors[0]
        raise DrctlError(
            f"s3://{bucket}: {len(errors)} object version(s) not deleted, e.g. "
            f"{first.get('Key')} {first.get('VersionId')}: "
            f"{first.get('Code')} {first.get('Message')}"
        )


def empty_bucket(ctx: Context, region: str, bucket: str, batch_size: int = DELETE_BATCH) -> int:
    """Delete every object version and delete marker; -1 if the bucket does not exist.

    `aws s3 rm --recursive` only adds delete markers to a versioned bucket (seed #18).
    Repeats the listing until it comes back empty (late writers, e.g. replication).
    """
    s3 = ctx.aws.client("s3", region)
    deleted = 0
    try:
        for _ in range(5):
            batch: list[dict[str, str]] = []
            found = 0
            for item in _versions(s3, bucket):
                batch.append(item)
                found += 1
                if len(batch) == batch_size:
                    _delete_batch(s3, bucket, batch)
                    batch = []
            if batch:
                _delete_batch(s3, bucket, batch)
            deleted += found
            if found == 0:
                return deleted
    except ClientError as exc:
        if _code(exc) in _NO_BUCKET:
            return -1
        raise
    raise DrctlError(f"s3://{bucket} keeps receiving objects: is something still writing to it?")


def describe_table(ctx: Context, region: str, table: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.aws.client("dynamodb", region).describe_table(TableName=table)["Table"])
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def unprotect_table(ctx: Context, region: str, table: str) -> bool:
    """Turn deletion protection off in this replica (the setting is per replica)."""
    described = describe_table(ctx, region, table)
    if described is None or not described.get("DeletionProtectionEnabled"):
        return False
    ctx.aws.client("dynamodb", region).update_table(
        TableName=table, DeletionProtectionEnabled=False
    )
    return True


def backup_table(ctx: Context, region: str, table: str, name: str) -> str | None:
    """An on-demand backup (kept after the table is deleted); None if there is no table."""
    if describe_table(ctx, region, table) is None:
        return None
    answer = ctx.aws.client("dynamodb", region).create_backup(TableName=table, BackupName=name)
    return str(answer["BackupDetails"]["BackupArn"])


def _wait_active(ctx: Context, region: str, table: str) -> None:
    poll(
        ctx.console,
        ctx.sleep,
        f"table {table} ({region}) to be ACTIVE",
        lambda: (describe_table(ctx, region, table) or {}).get("TableStatus") in (None, "ACTIVE"),
        TABLE_WAIT,
    )


def delete_global_table(ctx: Context, table: str, home: str, others: list[str]) -> None:
    """Remove the other regions' replicas from `home` (global tables 2019.11.21), then delete
    whatever table still exists in each region (standalone copies, the home table)."""
    described = describe_table(ctx, home, table)
    replicas = {r["RegionName"] for r in (described or {}).get("Replicas", [])}
    for region in others:
        if region in replicas:
            _wait_active(ctx, home, table)
            ctx.aws.client("dynamodb", home).update_table(
                TableName=table, ReplicaUpdates=[{"Delete": {"RegionName": region}}]
            )
            poll(
                ctx.console,
                ctx.sleep,
                f"replica of {table} in {region} to go",
                partial(_replica_gone, ctx, home, table, region),
                TABLE_WAIT,
            )
    for region in [*others, home]:
        if describe_table(ctx, region, table) is None:
            continue
        _wait_active(ctx, region, table)
        try:
            ctx.aws.client("dynamodb", region).delete_table(TableName=table)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        poll(
            ctx.console,
            ctx.sleep,
            f"table {table} ({region}) to be deleted",
            partial(_table_gone, ctx, region, table),
            TABLE_WAIT,
        )
        ctx.console.progress(f"    table {table} ({region}): deleted")


def _replica_gone(ctx: Context, home: str, table: str, region: str) -> bool:
    replicas = (describe_table(ctx, home, table) or {}).get("Replicas", [])
    return region not in {r["RegionName"] for r in replicas}


def _table_gone(ctx: Context, region: str, table: str) -> bool:
    return describe_table(ctx, region, table) is None


def stop_access_logging(ctx: Context, region: str, bucket: str) -> None:
    """No new access-log objects (the emptying itself would be logged into the log bucket)."""
    try:
        ctx.aws.client("s3", region).put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
    except ClientError as exc:
        if _code(exc) not in _NO_BUCKET:
            raise


def remove_bucket(ctx: Context, region: str, bucket: str, attempts: int = 4) -> str:
    """Empty and delete; retried because late writers (log delivery, replication in flight)
    can refill a bucket between the last listing and the delete."""
    for attempt in range(1, attempts + 1):
        if empty_bucket(ctx, region, bucket) < 0:
            return "absent"
        try:
            ctx.aws.client("s3", region).delete_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) in _NO_BUCKET:
                return "absent"
            if _code(exc) != "BucketNotEmpty" or attempt == attempts:
                raise
            ctx.sleep(30)
            continue
        return "deleted"
    return "deleted"  # pragma: no cover - the loop returns or raises


_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def delete_queue(ctx: Context, region: str, name: str) -> str:
    """Delete a queue a regional stack retained (DeletionPolicy: Retain); idempotent."""
    sqs = ctx.aws.client("sqs", region)
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.delete_queue(QueueUrl=url)
    except ClientError as exc:
        if _code(exc) in _NO_QUEUE:
            return "absent"
        raise
    return "deleted"


def _key_state(ctx: Context, region: str, key_id: str) -> str | None:
    try:
        metadata = ctx.aws.client("kms", region).describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        if _code(exc) == "NotFoundException":
            return None
        raise
    return str(metadata.get("KeyState"))


def schedule_key_deletion(ctx: Context, region: str, key_id: str, days: int) -> str:
    state = _key_state(ctx, region, key_id)
    if state is None:
        return "absent"
    if state == "PendingDeletion":
        return "deletion already scheduled"
    ctx.aws.client("kms", region).schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    return f"deletion scheduled in {days} days"


def keep_key(ctx: Context, region: str, key_id: str) -> str:
    """Keep a key usable (cancel a deletion its stack may have scheduled)."""
    state = _key_state(ctx, region, key_id)
    if state is None:
        return "absent"
    if state == "PendingDeletion":
        kms = ctx.aws.client("kms", region)
        kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)
        return "kept (its scheduled deletion was cancelled)"
    return "kept"
