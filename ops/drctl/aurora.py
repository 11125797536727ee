"""Aurora Global Database: detach members, delete the global cluster, delete clusters.

The order matters (seed #17): a cluster cannot be deleted while it belongs to a global cluster
and a global cluster cannot be deleted while it has members. Secondaries are detached first
(each in its own region), then the writer, then the global cluster goes. Clusters are deleted
through the RDS API (not left to CloudFormation) so that the final snapshot follows the
operator's --skip-final-snapshot, whatever DeletionPolicy the template has; the stack deletion
that follows finds them gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl.context import Context
from ops.drctl.waiting import WaitPolicy, poll

DETACH_WAIT = WaitPolicy(delay=15, max_attempts=120)  # 30 min
DELETE_WAIT = WaitPolicy(delay=30, max_attempts=120)  # 60 min: final snapshots take a while


@dataclass(frozen=True)
class ClusterRef:
    region: str
    identifier: str

    @classmethod
    def from_arn(cls, arn: str) -> ClusterRef:
        # arn:aws:rds:us-west-2:123456789012:cluster:dr-payment-aurora-secondary-dev
        parts = arn.split(":")
        return cls(region=parts[3], identifier=parts[-1])


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_global(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        found = rds.describe_global_clusters(GlobalClusterIdentifier=identifier)["GlobalClusters"]
    except ClientError as exc:
        if _code(exc) == "GlobalClusterNotFoundFault":
            return None
        raise
    return found[0] if found else None


def _member_arns(rds: Any, identifier: str) -> set[str]:
    described = describe_global(rds, identifier)
    return {m["DBClusterArn"] for m in (described or {}).get("GlobalClusterMembers", [])}


def _detached(rds: Any, identifier: str, arn: str) -> bool:
    return arn not in _member_arns(rds, identifier)


def dismantle_global_cluster(ctx: Context, home_region: str, identifier: str) -> list[ClusterRef]:
    """Detach every member (readers first) and delete the global cluster; returns the members."""
    home = ctx.aws.client("rds", home_region)
    described = describe_global(home, identifier)
    if described is None:
        ctx.console.progress(f"    global cluster {identifier}: absent")
        return []
    members = sorted(described.get("GlobalClusterMembers", []), key=lambda m: bool(m["IsWriter"]))
    for member in members:
        arn = member["DBClusterArn"]
        ref = ClusterRef.from_arn(arn)
        ctx.console.progress(f"    detaching {ref.identifier} ({ref.region}) from {identifier}")
        try:
            ctx.aws.client("rds", ref.region).remove_from_global_cluster(
                GlobalClusterIdentifier=identifier, DbClusterIdentifier=arn
            )
        except ClientError as exc:
            if _code(exc) not in ("DBClusterNotFoundFault", "InvalidGlobalClusterStateFault"):
                raise
        poll(
            ctx.console,
            ctx.sleep,
            f"{ref.identifier} to leave {identifier}",
            partial(_detached, home, identifier, arn),
            DETACH_WAIT,
        )
    if described.get("DeletionProtection"):
        home.modify_global_cluster(GlobalClusterIdentifier=identifier, DeletionProtection=False)
    home.delete_global_cluster(GlobalClusterIdentifier=identifier)
    poll(
        ctx.console,
        ctx.sleep,
        f"global cluster {identifier} to go",
        lambda: describe_global(home, identifier) is None,
        DETACH_WAIT,
    )
    ctx.console.progress(f"    global cluster {identifier}: deleted")
    return [ClusterRef.from_arn(m["DBClusterArn"]) for m in members]


def _describe_cluster(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return dict(rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0])
    except ClientError as exc:
        if _code(exc) == "DBClusterNotFoundFault":
            return None
        raise


def _unprotected(rds: Any, identifier: str) -> bool:
    cluster = _describe_cluster(rds, identifier) or {}
    return cluster.get("Status") == "available" and not cluster.get("DeletionProtection")


def _instance_gone(rds: Any, identifier: str) -> bool:
    try:
        rds.describe_db_instances(DBInstanceIdentifier=identifier)
    except ClientError as exc:
        if _code(exc) == "DBInstanceNotFound":
            return True
        raise
    return False


def _delete_instances(ctx: Context, rds: Any, cluster: dict[str, Any]) -> None:
    for member in cluster.get("DBClusterMembers", []):
        instance = member["DBInstanceIdentifier"]
        try:
            rds.delete_db_instance(DBInstanceIdentifier=instance)
        except ClientError as exc:
            if _code(exc) not in ("DBInstanceNotFound", "InvalidDBInstanceState"):
                raise  # InvalidDBInstanceState: already deleting
        poll(
            ctx.console,
            ctx.sleep,
            f"instance {instance} to be deleted",
            partial(_instance_gone, rds, instance),
            DELETE_WAIT,
        )


def delete_cluster(ctx: Context, ref: ClusterRef, final_snapshot: str | None) -> str:
    """Delete one cluster (instances first); idempotent. Returns what happened."""
    rds = ctx.aws.client("rds", ref.region)
    cluster = _describe_cluster(rds, ref.identifier)
    if cluster is None:
        return "absent"
    label = f"cluster {ref.identifier} ({ref.region})"
    if cluster.get("Status") != "deleting":
        poll(
            ctx.console,
            ctx.sleep,
            f"{label} to be available",
            lambda: (_describe_cluster(rds, ref.identifier) or {}).get("Status") == "available",
            DETACH_WAIT,
        )
        if cluster.get("DeletionProtection"):
            rds.modify_db_cluster(
                DBClusterIdentifier=ref.identifier, DeletionProtection=False, ApplyImmediately=True
            )
            poll(
                ctx.console,
                ctx.sleep,
                f"{label} to drop its deletion protection",
                partial(_unprotected, rds, ref.identifier),
                DETACH_WAIT,
            )
        _delete_instances(ctx, rds, cluster)
        snapshot_args: dict[str, Any] = (
            {"FinalDBSnapshotIdentifier": final_snapshot}
            if final_snapshot
            else {"SkipFinalSnapshot": True}
        )
        rds.delete_db_cluster(DBClusterIdentifier=ref.identifier, **snapshot_args)
    poll(
        ctx.console,
        ctx.sleep,
        f"{label} to be deleted",
        lambda: _describe_cluster(rds, ref.identifier) is None,
        DELETE_WAIT,
    )
    return f"deleted, final snapshot {final_snapshot}" if final_snapshot else "deleted, no snapshot"


@dataclass(frozen=True)
class MemberVersion:
    cluster: ClusterRef
    version: str
    is_writer: bool


def member_versions(ctx: Context, home_region: str, identifier: str) -> list[MemberVersion]:
    """The engine version each member of the global cluster runs (secondaries first)."""
    described = describe_global(ctx.aws.client("rds", home_region), identifier) or {}
    found = []
    members = sorted(described.get("GlobalClusterMembers", []), key=lambda m: bool(m["IsWriter"]))
    for member in members:
        ref = ClusterRef.from_arn(member["DBClusterArn"])
        cluster = _describe_cluster(ctx.aws.client("rds", ref.region), ref.identifier) or {}
        found.append(MemberVersion(ref, str(cluster.get("EngineVersion", "?")), member["IsWriter"]))
    return found
