"""`drctl failback`: after a failover, make the old primary region the writer again, planned.

 1. check    both regions answer; which case we are in:
             A  the old primary's cluster is a secondary of the global cluster again (Aurora
                re-adds it after failover-global-cluster once its region is back)
             B  the survivor was detached and promoted: the global cluster still holds the old
                primary's stale cluster (with the commits that never replicated)
 2. fence    the old primary region: processor at 0, its control replica brought to the current
             state, its secrets' rotation paused (its copies are stale until the secrets step).
             First, before anything: a region that comes back must not write. Its rule stays as
             it is: a disabled rule drops events, a throttled processor's wait.
 3. rotation the survivor's secret-rotation stack (made by the failover) cancelled and deleted:
             its copies become replicas again below, and a replica cannot carry a schedule.
             Rotation is off from here until the secrets step turns the primary's back on.
 4. rebuild  (B) the stale cluster: a final snapshot (kept: it holds what never replicated, for
             a person to compare), then detached and deleted with its global cluster; a new
             global cluster is made from the writer, and the old primary's cluster is created
             again in it, as a secondary, with the stale cluster's settings (same names, so the
             Aurora stacks still describe it). 30-60 minutes: storage is copied.
 5. endpoint (B) the writer-endpoint parameter and the functions of both regions pointed at the
             new global writer endpoint
 6..11       a planned switchover back (drctl switchover's steps), which also restores the
             secrets' replication from the old primary and turns its rotation back on
`--fence-only` stops after step 2: run it the moment the failed region answers again.
Refused before any change while a rotation is half-way in the survivor: the value to copy back
would not be the password the database has.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ops.drctl import (
    aurora,
    control,
    credentials,
    fence,
    functions,
    names,
    redrive,
    rotation,
    topology,
)
from ops.drctl.aurora import ClusterRef
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused
from ops.drctl.procedure import Procedure
from ops.drctl.switchover import cut_over
from ops.drctl.waiting import poll

ACTOR = "drctl failback"


@dataclass(frozen=True)
class FailbackOptions:
    to: str = "primary"
    dry_run: bool = False
    fence_only: bool = False
    report: Path | None = None
    parallel: int = redrive.DEFAULT_PARALLEL


def _cluster_settings(ctx: Context, ref: ClusterRef) -> dict[str, Any] | None:
    """What it takes to create the old primary's cluster again: its own settings."""
    cluster = aurora.describe_cluster(ctx, ref)
    if cluster is None:
        return None
    rds = ctx.aws.client("rds", ref.region)
    instances = []
    for member in cluster.get("DBClusterMembers", []):
        described = rds.describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])
        instance = described["DBInstances"][0]
        instances.append(
            {
                "DBInstanceIdentifier": instance["DBInstanceIdentifier"],
                "DBInstanceClass": instance["DBInstanceClass"],
            }
        )
    settings = {
        "DBClusterIdentifier": ref.identifier,
        "Engine": cluster["Engine"],
        "EngineVersion": cluster.get("EngineVersion"),
        "DBSubnetGroupName": cluster.get("DBSubnetGroup"),
        "VpcSecurityGroupIds": [
            g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])
        ],
        "DBClusterParameterGroupName": cluster.get("DBClusterParameterGroup"),
        "KmsKeyId": cluster.get("KmsKeyId"),
        "StorageEncrypted": cluster.get("StorageEncrypted"),
        "Port": cluster.get("Port"),
        "BackupRetentionPeriod": cluster.get("BackupRetentionPeriod"),
        "EnableCloudwatchLogsExports": cluster.get("EnabledCloudwatchLogsExports"),
        "CopyTagsToSnapshot": cluster.get("CopyTagsToSnapshot"),
        "DeletionProtection": True,
        "Tags": cluster.get("TagList"),
    }
    return {
        "cluster": {k: v for k, v in settings.items() if v not in (None, [], "")},
        "instances": instances,
    }


class Failback:
    def __init__(self, ctx: Context, options: FailbackOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.proc = Procedure(ctx, "failback")
        self.identifier = names.global_cluster(ctx.env)

    def run(self) -> int:
        self.check()
        sides = self.sides
        if self.options.dry_run:
            plan = "rebuild, endpoint, " if self.case == "B" else ""
            self.ctx.console.result(
                f"failback --env {self.ctx.env} (dry run, nothing changed): case {self.case}; "
                f"{sides.old_region} -> {sides.new_region}; steps: fence, {plan}then switchover"
            )
            return EXIT_OK
        self.fence_home()
        if self.options.fence_only:
            self.proc.summary(f"failback --env {self.ctx.env}: {sides.new_region} fenced")
            self.proc.write_report(self.options.report)
            return EXIT_OK
        with self.proc.step("rotation", f"secret rotation leaves {sides.old_region}") as step:
            step.notes.extend(rotation.hand_back(self.ctx, self.ctx.plan(), sides.old_role))
        if self.case == "B":
            self.rebuild()
            self.point_functions()
        view = aurora.global_view(self.ctx, sides.old_region, self.identifier)
        if view is None or view.member_in(sides.new_region) is None:
            raise DrctlError(f"{self.identifier} has no member in {sides.new_region} after rebuild")
        cut_over(
            self.ctx, self.proc, sides, view, parallel=self.options.parallel, restore_secrets=True
        )
        self.proc.summary(
            f"failback --env {self.ctx.env}: {sides.old_region} -> {sides.new_region} done"
        )
        self.proc.write_report(self.options.report)
        return EXIT_OK

    def check(self) -> None:
        ctx = self.ctx
        with self.proc.step("check", "check both regions and the topology") as step:
            roles = ctx.region_roles()
            self.readings = control.read_all(ctx, roles.values())
            self.sides = sides = topology.sides(ctx, self.options.to, self.readings)
            for reading in self.readings:
                step.note(f"control item in {reading.region}: {reading.describe()}")
                if not reading.answered:
                    raise Refused(
                        f"{reading.region} does not answer ({reading.error}): failback is "
                        "planned, it needs both regions"
                    )
            current = control.newest(self.readings)
            if current is None or not current.names(sides.old_region):
                raise Refused(
                    f"the active region is not {sides.old_region} "
                    f"({current.active_region if current else 'none'}): nothing to fail back "
                    "from (use `drctl switchover` between two healthy regions)"
                )
            self.current = current
            for name in credentials.secret_names(ctx.env):
                if not self.options.fence_only and credentials.rotating(
                    ctx, sides.old_region, name
                ):
                    raise Refused(
                        f"a rotation of {name} is half-way in {sides.old_region} (a version "
                        "labelled AWSPENDING only): its current value may not be the database's "
                        "password. Let it finish (minutes; its function's log group shows it), "
                        "or fix it as docs/runbook.md says, then re-run"
                    )
            home = ClusterRef(sides.new_region, names.cluster(sides.new_role, ctx.env))
            self.home = home
            view = aurora.global_view(ctx, sides.old_region, self.identifier)
            self.writer_in_global = (
                view is not None and view.member_in(sides.old_region) is not None
            )
            home_in_global = view is not None and view.member_in(sides.new_region) is not None
            self.case = "A" if self.writer_in_global and home_in_global else "B"
            if self.case == "B":
                self.settings = _cluster_settings(ctx, home)
                if self.settings is None:
                    raise Refused(
                        f"{home.identifier} ({home.region}) is gone and so are its settings: "
                        f"redeploy its stack (drctl deploy --only aurora-{sides.new_role}) "
                        "against a global cluster made from the writer, then re-run"
                    )
            step.note(f"case {self.case}: back to {sides.new_region} ({sides.new_role})")
        self.proc.facts.update(
            {"from": sides.old_region, "to": sides.new_region, "case": self.case}
        )

    def fence_home(self) -> None:
        sides = self.sides
        with self.proc.step(
            "fence-returning", f"fence {sides.new_region} before it can write"
        ) as step:
            step.note(fence.stop_processor(self.ctx, sides.new_role, sides.new_region))
            result = control.replica(self.ctx, sides.new_region).write(self.current)
            step.note(
                f"control item in {sides.new_region}: active={self.current.active_region} "
                f"epoch={self.current.epoch} ({result.outcome})"
            )
            # Its copies are stale until the secrets step: nothing may rotate them meanwhile.
            for name in credentials.secret_names(self.ctx.env):
                note = credentials.pause_rotation(self.ctx, sides.new_region, name)
                step.note(note)
                if "NOT paused" in note:
                    step.outcome = "degraded"

    def rebuild(self) -> None:
        ctx, sides, home = self.ctx, self.sides, self.home
        with self.proc.step("rebuild", f"rebuild {home.identifier} as a secondary") as step:
            stamp = ctx.now().strftime("%Y%m%d%H%M")
            snapshot = f"{home.identifier}-stale-{stamp}"
            writer = ClusterRef(sides.old_region, names.cluster(sides.old_role, ctx.env))
            if not self.writer_in_global:
                # The global cluster holds only the stale cluster: it goes, the writer founds anew.
                aurora.dismantle_global_cluster(ctx, sides.new_region, self.identifier)
                step.note(f"stale global cluster {self.identifier} dismantled")
            outcome = aurora.delete_cluster(ctx, home, snapshot)
            step.note(f"stale {home.identifier}: {outcome} (kept: it holds what never replicated)")
            self.proc.facts["stale_snapshot"] = snapshot
            if not self.writer_in_global:
                writer_arn = str((aurora.describe_cluster(ctx, writer) or {})["DBClusterArn"])
                ctx.aws.client("rds", sides.old_region).create_global_cluster(
                    GlobalClusterIdentifier=self.identifier,
                    SourceDBClusterIdentifier=writer_arn,
                    DeletionProtection=True,
                )
                aurora.wait_for_writer(ctx, sides.old_region, self.identifier, writer_arn)
                step.note(f"global cluster {self.identifier} made from {writer.identifier}")
            settings = self.settings
            assert settings is not None
            rds = ctx.aws.client("rds", home.region)
            rds.create_db_cluster(GlobalClusterIdentifier=self.identifier, **settings["cluster"])
            for instance in settings["instances"]:
                rds.create_db_instance(
                    DBClusterIdentifier=home.identifier,
                    Engine=settings["cluster"]["Engine"],
                    **instance,
                )
            poll(
                ctx.console,
                ctx.sleep,
                f"{home.identifier} to join {self.identifier} as a secondary",
                partial(self._joined, writer),
                aurora.REJOIN_WAIT,
            )
            step.note(f"{home.identifier} is a secondary of {self.identifier} again")

    def _joined(self, writer: ClusterRef) -> bool:
        view = aurora.global_view(self.ctx, writer.region, self.identifier)
        if view is None or view.member_in(self.home.region) is None:
            return False
        return (aurora.describe_cluster(self.ctx, self.home) or {}).get("Status") == "available"

    def point_functions(self) -> None:
        ctx, sides = self.ctx, self.sides
        with self.proc.step(
            "endpoint", "point both regions at the new global writer endpoint"
        ) as step:
            view = aurora.global_view(ctx, sides.old_region, self.identifier)
            if view is None or not view.endpoint:
                step.outcome = "skipped"
                step.note("no global writer endpoint to point at")
                return
            for role, region in ctx.region_roles().items():
                step.notes.extend(functions.repoint_db_host(ctx, role, region, view.endpoint))


def run(ctx: Context, options: FailbackOptions) -> int:
    return Failback(ctx, options).run()
