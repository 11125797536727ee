"""The database secrets across a change of writer region.

Two secrets (infra-global/secrets.yaml): master and application user, primary copy in the
primary region, replicated to the secondary. Their `host` is what the hosted rotation functions
connect to (the functions themselves use the writer-endpoint SSM parameter), and those
functions run in the primary region only (secrets-rotation.yaml).

- switchover: `host` := the global writer endpoint, written to the primary copy (it
  replicates). From then on it follows every writer change by itself; rotation keeps running in
  the primary region and reaches the writer over the peering (3306 is open to the peer).
- failover: the primary copy may be unreachable and a replica is read-only, so the surviving
  region's replicas are promoted (StopReplicationToReplica) and their `host` moved. That also
  fences the old region's rotation: a rotation still running there against its stale cluster
  can no longer replicate a password the new writer does not know. Rotation is paused there
  when it answers; the survivor has no rotation function, so rotation stays off until failback
  (the passwords do not change meanwhile). docs/runbook.md says how to rotate there if the
  outage outlasts the rotation window.
- failback: the old primary copy gets the survivor's current value (and `host`), replicates
  over the survivor's standalone copy again (ForceOverwriteReplicaSecret) and rotation is
  turned back on where its functions run.

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


@dataclass(frozen=True)
class SecretView:
    region: str
    name: str
    primary_region: str | None  # where the primary copy lives; None: this one is standalone
    rotation_enabled: bool
    rotation_lambda: str | None
    rotation_rules: dict[str, Any]
    kms_key: str | None
    replicas: tuple[str, ...]

    @property
    def holds_primary(self) -> bool:
        return self.primary_region in (None, self.region)


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
        primary_region=described.get("PrimaryRegion"),
        rotation_enabled=bool(described.get("RotationEnabled")),
        rotation_lambda=described.get("RotationLambdaARN"),
        rotation_rules=dict(described.get("RotationRules") or {}),
        kms_key=described.get("KmsKeyId"),
        replicas=tuple(r["Region"] for r in described.get("ReplicationStatus", [])),
    )


def _value(ctx: Context, region: str, name: str) -> dict[str, Any]:
    text = ctx.aws.client("secretsmanager", region).get_secret_value(SecretId=name)["SecretString"]
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} in {region} is not a JSON object")
    return value


def point_host(ctx: Context, region: str, name: str, host: str, cluster_id: str | None) -> str:
    """Write `host` (and dbClusterIdentifier, when the secret has one) into the copy in `region`;
    same password. Returns what happened."""
    value = _value(ctx, region, name)
    changes = {"host": host}
    if cluster_id and "dbClusterIdentifier" in value:
        changes["dbClusterIdentifier"] = cluster_id
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


def restore_replication(ctx: Context, home: str, other: str, name: str, host: str) -> list[str]:
    """Failback: make `home` the primary copy again, replicated to `other`, rotation on."""
    notes = []
    at_home, at_other = view(ctx, home, name), view(ctx, other, name)
    if at_home is None:
        return [f"{name} ({home}): absent: redeploy the secrets stack, then re-run"]
    if at_other is not None and at_other.holds_primary:
        # `other` was promoted during the failover: its value is what the application used.
        current = _value(ctx, other, name)
        current["host"] = host
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
        notes.append(point_host(ctx, home, name, host, None))
    if not at_home.rotation_enabled and at_home.rotation_lambda:
        arguments: dict[str, Any] = {
            "SecretId": name,
            "RotationLambdaARN": at_home.rotation_lambda,
            "RotateImmediately": False,
        }
        if at_home.rotation_rules:
            arguments["RotationRules"] = at_home.rotation_rules
        ctx.aws.client("secretsmanager", home).rotate_secret(**arguments)
        notes.append(f"{name} ({home}): rotation on again")
    return notes
