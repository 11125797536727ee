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

from botocore.exceptions import BotoCoreError, ClientError

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


# -- promotion: switchover, failover, detach-and-promote --------------------------------------

PROMOTE_WAIT = WaitPolicy(delay=10, max_attempts=90)  # 15 min: typically 1-2 min
REJOIN_WAIT = WaitPolicy(delay=30, max_attempts=120)  # 60 min: a secondary joining copies storage


@dataclass(frozen=True)
class Member:
    ref: ClusterRef
    arn: str
    is_writer: bool


@dataclass(frozen=True)
class GlobalView:
    identifier: str
    status: str
    endpoint: str | None  # the global writer endpoint (follows the writer)
    members: tuple[Member, ...]
    failover_state: dict[str, Any]

    @property
    def writer(self) -> Member | None:
        return next((m for m in self.members if m.is_writer), None)

    def member_in(self, region: str) -> Member | None:
        return next((m for m in self.members if m.ref.region == region), None)


def global_view(
    ctx: Context, region: str, identifier: str, *, bounded: bool = False
) -> GlobalView | None:
    """The global cluster as `region`'s RDS endpoint describes it (every member region sees it)."""
    described = describe_global(ctx.aws.client("rds", region, bounded=bounded), identifier)
    if described is None:
        return None
    members = tuple(
        Member(ClusterRef.from_arn(m["DBClusterArn"]), m["DBClusterArn"], bool(m.get("IsWriter")))
        for m in described.get("GlobalClusterMembers", [])
    )
    return GlobalView(
        identifier=identifier,
        status=str(described.get("Status", "")),
        endpoint=described.get("Endpoint"),
        members=members,
        failover_state=dict(described.get("FailoverState") or {}),
    )


def describe_cluster(
    ctx: Context, ref: ClusterRef, *, bounded: bool = False
) -> dict[str, Any] | None:
    return _describe_cluster(ctx.aws.client("rds", ref.region, bounded=bounded), ref.identifier)


def _writer_is(ctx: Context, region: str, identifier: str, arn: str) -> bool:
    view = global_view(ctx, region, identifier)
    if view is None or view.status != "available" or view.failover_state.get("Status"):
        return False
    writer = view.writer
    return writer is not None and writer.arn == arn


def switchover(ctx: Context, region: str, identifier: str, target_arn: str) -> None:
    """Planned (RPO 0): Aurora waits until the target has every commit, then swaps roles. It
    fails if the current writer does not answer: that is what `failover` is for."""
    ctx.aws.client("rds", region).switchover_global_cluster(
        GlobalClusterIdentifier=identifier, TargetDbClusterIdentifier=target_arn
    )


def wait_for_writer(ctx: Context, region: str, identifier: str, target_arn: str) -> None:
    poll(
        ctx.console,
        ctx.sleep,
        f"{ClusterRef.from_arn(target_arn).identifier} to be the writer of {identifier}",
        partial(_writer_is, ctx, region, identifier, target_arn),
        PROMOTE_WAIT,
    )


def _standalone_writer(ctx: Context, region: str, identifier: str, ref: ClusterRef) -> bool:
    view = global_view(ctx, region, identifier)
    if view is not None and any(member.ref == ref for member in view.members):
        return False
    return (describe_cluster(ctx, ref) or {}).get("Status") == "available"


@dataclass(frozen=True)
class Promotion:
    how: str  # "failover-global-cluster" | "detach-and-promote"
    error: str | None = None  # why the managed failover was not used


def failover(ctx: Context, region: str, identifier: str, target_arn: str) -> Promotion:
    """Unplanned: `failover-global-cluster --allow-data-loss` (the target becomes the writer and
    stays in the global cluster, so the global writer endpoint follows it). If Aurora refuses or
    the call fails, detach the target (`remove-from-global-cluster`): a detached secondary
    becomes a standalone, writable cluster. Called in the surviving region only."""
    rds = ctx.aws.client("rds", region)
    try:
        rds.failover_global_cluster(
            GlobalClusterIdentifier=identifier,
            TargetDbClusterIdentifier=target_arn,
            AllowDataLoss=True,
        )
    except (ClientError, BotoCoreError) as exc:
        reason = (
            str(exc.response.get("Error", {}).get("Code", "error"))
            if isinstance(exc, ClientError)
            else type(exc).__name__
        )
        rds.remove_from_global_cluster(
            GlobalClusterIdentifier=identifier, DbClusterIdentifier=target_arn
        )
        return Promotion("detach-and-promote", reason)
    return Promotion("failover-global-cluster")


def wait_for_promotion(
    ctx: Context, region: str, identifier: str, target_arn: str, how: str
) -> None:
    if how == "detach-and-promote":
        ref = ClusterRef.from_arn(target_arn)
        poll(
            ctx.console,
            ctx.sleep,
            f"{ref.identifier} to leave {identifier} as a standalone writer",
            partial(_standalone_writer, ctx, region, identifier, ref),
            PROMOTE_WAIT,
        )
    else:
        wait_for_writer(ctx, region, identifier, target_arn)
