"""The database secrets, and their rotation, across a change of writer region.

Two secrets (infra-global/secrets.yaml): master and application user, primary copy in the
primary region, replicated to the secondary. Their `host` is what the hosted rotation functions
connect to (the functions themselves use the writer-endpoint SSM parameter), and the application
secret's `masterarn` names the master secret those functions rotate it with. Rotation runs where
the primary copy is, in that region's VPC (infra-global/secrets-rotation.yaml, one stack per
region; ops/drctl/rotation.py).

- switchover: `host` := the global writer endpoint, written to the primary copy (it
  replicates). From then on it follows every writer change by itself; rotation keeps running in
  the primary region and reaches the writer over the peering (3306 is open to the peer).
- failover: the primary copy may be unreachable and a replica is read-only, so the surviving
  region's replicas are promoted (StopReplicationToReplica) and their `host` (and `masterarn`)
  moved. That also fences the old region's rotation: a rotation still running there against its
  stale cluster can no longer replicate a password the new writer does not know; it is paused
  there when the region answers. Then the survivor's rotation stack is deployed: rotation runs
  there, against the new writer, until failback.
- failback: the returning region's rotation is paused as soon as it is fenced; the survivor's
  rotation stack is deleted; the old primary copy gets the survivor's current value (`host`,
  `masterarn` its own), replicates over the survivor's standalone copy again
  (ForceOverwriteReplicaSecret) and rotation is turned back on there. Refused while a rotation
  is half-way in the survivor (its value would not be the database's).

Secret values are read and written, never printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import names
from ops.drctl.context import Context


def secret_names(env: str) -> list[str]:
    return [names.app_secret(env), names.master_secret(env)]


PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
MASTER_ARN_KEY = "masterarn"  # in the application secret: what its rotation rotates it with


@dataclass(frozen=True)
class SecretView:
    region: str
    name: str
    arn: str
    primary_region: str | None  # where the primary copy lives; None: this one is standalone
    rotation_enabled: bool
    rotation_lambda: str | None
    rotation_rules: dict[str, Any]
    kms_key: str | None
    replicas: tuple[str, ...]
    stages: dict[str, tuple[str, ...]]  # version id -> staging labels

    @property
    def holds_primary(self) -> bool:
        return self.primary_region in (None, self.region)

    @property
    def rotating(self) -> bool:
        """A version is AWSPENDING and not AWSCURRENT: a rotation is half-way (or failed half-way),
        and the database may already hold the pending password."""
        return any(PENDING in labels and CURRENT not in labels for labels in self.stages.values())


def view(ctx: Context, region: str, name: str, *, bounded: bool = False) -> SecretView | None:
    try:
        described = ctx.aws.client("secretsmanager", region, bounded=bounded).describe_secret(
            SecretId=name
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return SecretView(
        region=region,
        name=name,
        arn=str(described.get("ARN", "")),
        primary_region=described.get("PrimaryRegion"),
        rotation_enabled=bool(described.get("RotationEnabled")),
        rotation_lambda=described.get("RotationLambdaARN"),
        rotation_rules=dict(described.get("RotationRules") or {}),
        kms_key=described.get("KmsKeyId"),
        replicas=tuple(r["Region"] for r in described.get("ReplicationStatus", [])),
        stages={k: tuple(v) for k, v in (described.get("VersionIdsToStages") or {}).items()},
    )


def _value(ctx: Context, region: str, name: str) -> dict[str, Any]:
    text = ctx.aws.client("secretsmanager", region).get_secret_value(SecretId=name)["SecretString"]
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} in {region} is not a JSON object")
    return value


def point_host(
    ctx: Context,
    region: str,
    name: str,
    host: str,
    cluster_id: str | None,
    master_arn: str | None = None,
) -> str:
    """Write `host` (and dbClusterIdentifier, and `masterarn` = `master_arn`, where the secret has
    them) into the copy in `region`; same password. Returns what happened."""
    value = _value(ctx, region, name)
    changes = {"host": host}
    if cluster_id and "dbClusterIdentifier" in value:
        changes["dbClusterIdentifier"] = cluster_id
    if master_arn and MASTER_ARN_KEY in value:
        changes[MASTER_ARN_KEY] = master_arn
    if all(value.get(key) == wanted for key, wanted in changes.items()):
        return f"{name} ({region}): host already {host}"
    value.update(changes)
    ctx.aws.client("secretsmanager", region).put_secret_value(
        SecretId=name, SecretString=json.dumps(value)
    )
    return f"{name} ({region}): host -> {host}"


def promote_replica(ctx: Context, region: str, name: str) -> str:
    found = view(ctx, region, name)
    if found is None:
        return f"{name} ({region}): absent"
    if found.holds_primary:
        return f"{name} ({region}): already a primary copy"
    ctx.aws.client("secretsmanager", region).stop_replication_to_replica(SecretId=name)
    return f"{name} ({region}): replica promoted (replication from {found.primary_region} stopped)"


def pause_rotation(ctx: Context, region: str, name: str) -> str:
    """Bounded: the region may be down; a failure is reported, not raised."""
    try:
        found = view(ctx, region, name, bounded=True)
        if found is None:
            return f"{name} ({region}): absent"
        if not found.rotation_enabled:
            return f"{name} ({region}): rotation already off"
        ctx.aws.client("secretsmanager", region, bounded=True).cancel_rotate_secret(SecretId=name)
    except ClientError as exc:
        return f"{name} ({region}): rotation NOT paused ({exc.response['Error']['Code']})"
    except BotoCoreError as exc:
        return f"{name} ({region}): rotation NOT paused (unreachable: {type(exc).__name__})"
    return f"{name} ({region}): rotation paused"


def primary_copy_region(ctx: Context, regions: list[str], name: str) -> str | None:
    """Where the primary copy of `name` is, asking each region in turn."""
    for region in regions:
        try:
            found = view(ctx, region, name, bounded=True)
        except (ClientError, BotoCoreError):
            continue
        if found is not None:
            return found.region if found.holds_primary else found.primary_region
    return None


def arn(ctx: Context, region: str, name: str) -> str | None:
    found = view(ctx, region, name)
    return found.arn if found is not None else None


def diverged(ctx: Context, old: str, new: str, name: str) -> str | None:
    """Why `new`'s copy of `name` cannot serve after a switchover from `old`, or None: both
    hold a primary copy (what a failover leaves; only failback joins them again) and `old`'s
    has moved on (another password) or rotates on its own."""
    at_old, at_new = view(ctx, old, name, bounded=True), view(ctx, new, name, bounded=True)
    if at_old is None or at_new is None or not (at_old.holds_primary and at_new.holds_primary):
        return None
    if at_old.rotation_enabled:
        return f"{name} has a standalone copy in each region and {old}'s rotates on its own"
    credentials = ("username", "password")
    old_value, new_value = _value(ctx, old, name), _value(ctx, new, name)
    if any(old_value.get(key) != new_value.get(key) for key in credentials):
        return f"{name} has a standalone copy in each region and {old}'s holds another password"
    return None


def rotating(ctx: Context, region: str, name: str) -> bool:
    found = view(ctx, region, name, bounded=True)
    return found is not None and found.rotating


def resume_rotation(ctx: Context, region: str, name: str) -> str:
    """Rotation on again with the schedule and function the secret already has (they are kept
    when it is paused); RotateImmediately False: only the function's testSecret step runs."""
    found = view(ctx, region, name)
    if found is None:
        return f"{name} ({region}): absent"
    if found.rotation_enabled:
        return f"{name} ({region}): rotation on"
    if not found.rotation_lambda:
        return f"{name} ({region}): no rotation function configured (deploy its rotation stack)"
    arguments: dict[str, Any] = {
        "SecretId": name,
        "RotationLambdaARN": found.rotation_lambda,
        "RotateImmediately": False,
    }
    if found.rotation_rules:
        arguments["RotationRules"] = found.rotation_rules
    ctx.aws.client("secretsmanager", region).rotate_secret(**arguments)
    return f"{name} ({region}): rotation on again"


def restore_replication(
    ctx: Context, home: str, other: str, name: str, host: str, master_arn: str | None = None
) -> list[str]:
    """Failback: make `home` the primary copy again, replicated to `other` (rotation is turned
    on by the caller once every secret is restored: the application secret's rotation reads the
    master secret). `master_arn`: the master secret's ARN in `home` (`masterarn`)."""
    notes = []
    at_home, at_other = view(ctx, home, name), view(ctx, other, name)
    if at_home is None:
        return [f"{name} ({home}): absent: redeploy the secrets stack, then re-run"]
    if at_other is not None and at_other.holds_primary:
        # `other` was promoted during the failover: its value is what the application used.
        current = _value(ctx, other, name)
        current["host"] = host
        if master_arn and MASTER_ARN_KEY in current:
            current[MASTER_ARN_KEY] = master_arn
        ctx.aws.client("secretsmanager", home).put_secret_value(
            SecretId=name, SecretString=json.dumps(current)
        )
        replica: dict[str, Any] = {"Region": other}
        if at_other.kms_key:
            replica["KmsKeyId"] = at_other.kms_key
        ctx.aws.client("secretsmanager", home).replicate_secret_to_regions(
            SecretId=name, AddReplicaRegions=[replica], ForceOverwriteReplicaSecret=True
        )
        notes.append(f"{name}: {other}'s value copied to {home}, replicated to {other} again")
    else:
        notes.append(point_host(ctx, home, name, host, None, master_arn))
    return notes
