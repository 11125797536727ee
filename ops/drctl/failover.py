"""`drctl failover`: the writing region is down; make the other one write. May lose what Aurora
had not replicated; redrive and reconcile then recover what they can, and say what they could
not.

 1. check      the surviving region answers; its cluster is in the global cluster (or already
               promoted: an interrupted run is finished by running it again)
 2. fence      control item -> none (survivor first; the failed region's replica bounded), and
               whatever still answers of the failed region: its rule off, its processor at 0,
               its secrets' rotation paused. Every call to it: one attempt, seconds.
 3. promote    failover-global-cluster --allow-data-loss; if that fails, detach-and-promote
               (remove-from-global-cluster: the detached cluster becomes a standalone writer)
 4. endpoint   detach-and-promote only: the writer-endpoint parameter and the survivor's
               functions pointed at the promoted cluster (the global endpoint no longer is)
 5. control    control item -> the survivor, one epoch later
 6. secrets    the survivor's replicas promoted, `host` -> the new writer (`masterarn` -> the
               survivor's master secret)
 7. unfence    the survivor's rule and processor on (normally never fenced)
 8. redrive    the survivor's standby queue (what it set aside while passive)
 9. reconcile  ledger vs sessions since --reconcile-since (default 24h before now)
10. rotation   the survivor's secret-rotation stack deployed (hosted rotation in its VPC,
               against the new writer): rotation runs there until failback. Last, so it costs
               the payments nothing; if it fails, the passwords simply do not change meanwhile.

Nothing here waits on the failed region: it is fenced again by failback before it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import (
    aurora,
    control,
    credentials,
    fence,
    functions,
    names,
    reconcile,
    redrive,
    rotation,
    topology,
)
from ops.drctl.aurora import ClusterRef
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError
from ops.drctl.procedure import Procedure
from shared.names import Queue
from shared.region_control import NO_REGION

ACTOR = "drctl failover"


@dataclass(frozen=True)
class FailoverOptions:
    to: str | None = None
    dry_run: bool = False
    report: Path | None = None
    parallel: int = redrive.DEFAULT_PARALLEL
    reconcile_since: str = "24h"


@dataclass(frozen=True)
class Target:
    ref: ClusterRef
    arn: str
    in_global: bool  # False: already detached (an earlier, interrupted run)
    is_writer: bool


def _target(ctx: Context, sides: topology.Sides) -> tuple[Target, aurora.GlobalView | None]:
    identifier = names.global_cluster(ctx.env)
    view = aurora.global_view(ctx, sides.new_region, identifier)
    member = view.member_in(sides.new_region) if view is not None else None
    if member is not None:
        return Target(member.ref, member.arn, True, member.is_writer), view
    ref = ClusterRef(sides.new_region, names.cluster(sides.new_role, ctx.env))
    cluster = aurora.describe_cluster(ctx, ref)
    if cluster is None:
        raise DrctlError(
            f"no Aurora cluster {ref.identifier} in {ref.region}, in or out of {identifier}: "
            "nothing to promote"
        )
    return Target(ref, str(cluster["DBClusterArn"]), False, True), view


class Failover:
    def __init__(self, ctx: Context, options: FailoverOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.proc = Procedure(ctx, "failover")
        self.identifier = names.global_cluster(ctx.env)
        self.how = "already promoted"
        self.host = ""
        self.also: list[str] = []  # the failed region, when it answered the check

    def run(self) -> int:
        ctx, proc = self.ctx, self.proc
        self.check()
        sides = self.sides
        reconcile_since = reconcile.parse_since(self.options.reconcile_since, ctx.now())
        if self.options.dry_run:
            ctx.console.result(
                f"failover --env {ctx.env} (dry run, nothing changed): {sides.old_region} -> "
                f"{sides.new_region}; steps: fence, promote, endpoint, control, secrets, "
                "unfence, redrive, reconcile, rotation"
            )
            return EXIT_OK
        self.fence()
        self.promote()
        self.point_functions()
        with proc.step("control", f"control item: active = {sides.new_region}") as step:
            moved = control.move(
                ctx, sides.new_region, must=sides.new_region, also=self.also, actor=ACTOR
            )
            step.notes.extend(moved.notes)
            proc.facts["epoch"] = moved.target.epoch
        self.secrets()
        with proc.step("unfence", f"unfence {sides.new_region}") as step:
            step.notes.extend(fence.unfence_region(ctx, sides.new_role, sides.new_region))
        self.redrive()
        with proc.step("reconcile", "reconcile ledger and sessions") as step:
            checked = reconcile.reconcile(ctx, sides.new_role, sides.new_region, reconcile_since)
            step.notes.extend(checked.lines())
            proc.facts["reconcile"] = checked.as_dict()
            if checked.unresolved:
                step.outcome = "degraded"
        self.rotation()
        proc.summary(
            f"failover --env {ctx.env}: {sides.old_region} -> {sides.new_region} ({self.how})"
        )
        proc.write_report(self.options.report)
        return EXIT_OK

    def check(self) -> None:
        with self.proc.step("check", "check the surviving region") as step:
            roles = self.ctx.region_roles()
            self.readings = control.read_all(self.ctx, roles.values())
            self.sides = sides = topology.sides(self.ctx, self.options.to, self.readings)
            self.survivor = next(r for r in self.readings if r.region == sides.new_region)
            if not self.survivor.answered:  # one bounded attempt failed: try it properly
                self.survivor = control.read(self.ctx, sides.new_region, bounded=False)
                self.readings = [
                    self.survivor if r.region == sides.new_region else r for r in self.readings
                ]
            if not self.survivor.answered:
                raise DrctlError(
                    f"the surviving region {sides.new_region} does not answer either "
                    f"({self.survivor.error}): nothing to fail over to"
                )
            self.target, _ = _target(self.ctx, sides)
            step.note(
                f"failed: {sides.old_region} ({sides.old_role}); surviving: {sides.new_region}"
            )
            for reading in self.readings:
                step.note(f"control item in {reading.region}: {reading.describe()}")
            where = f"member of {self.identifier}" if self.target.in_global else "standalone"
            step.note(f"target {self.target.ref.identifier}: {where}")
        self.proc.facts.update({"from": sides.old_region, "to": sides.new_region})

    def fence(self) -> None:
        ctx, sides = self.ctx, self.sides
        title = f"fence {sides.old_region} (what still answers, bounded)"
        # A replica that did not answer the check is not written to again: it would cost another
        # timeout, and the global table brings it the new state when its region is back.
        failed = next(r for r in self.readings if r.region == sides.old_region)
        self.also = [sides.old_region] if failed.answered else []
        with self.proc.step("fence", title) as step:
            held = self.survivor.control
            if held is not None and held.names(sides.new_region):
                step.note(f"control item already names {sides.new_region}: left as it is")
            else:
                moved = control.move(
                    ctx,
                    NO_REGION,
                    must=sides.new_region,
                    also=self.also,
                    actor=ACTOR,
                    readings=self.readings,
                )
                step.notes.extend(f"control item {note}" for note in moved.notes)
            if not failed.answered:
                step.note(f"control item {sides.old_region}: not written (it did not answer)")
            # Each call to the failed region is one short attempt; all at once, so the whole
            # fence costs one timeout, not one per call.
            calls: list[Callable[[], str]] = [
                partial(
                    fence.disable_event_rule, ctx, sides.old_role, sides.old_region, bounded=True
                ),
                partial(fence.stop_processor, ctx, sides.old_role, sides.old_region, bounded=True),
                *(
                    partial(credentials.pause_rotation, ctx, sides.old_region, name)
                    for name in credentials.secret_names(ctx.env)
                ),
            ]
            with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                step.notes.extend(pool.map(lambda call: call(), calls))
            markers = ("UNREACHABLE", "FAILED", "NOT paused", "not written")
            if any(marker in note for note in step.notes for marker in markers):
                step.outcome = "degraded"

    def promote(self) -> None:
        target, region = self.target, self.sides.new_region
        with self.proc.step("promote", f"promote {target.ref.identifier} ({region})") as step:
            if target.in_global and target.is_writer:
                step.outcome = "skipped"
                step.note(f"{target.ref.identifier} is already the writer of {self.identifier}")
            elif not target.in_global:
                step.outcome = "skipped"
                step.note(f"{target.ref.identifier} is already a standalone writer")
                self.how = "detach-and-promote"
            else:
                promotion = aurora.failover(self.ctx, region, self.identifier, target.arn)
                self.how = promotion.how
                if promotion.error:
                    step.note(f"failover-global-cluster failed ({promotion.error}): detached")
                aurora.wait_for_promotion(self.ctx, region, self.identifier, target.arn, self.how)
                step.note(f"{target.ref.identifier} is the writer ({self.how})")
        self.proc.facts["promotion"] = self.how

    def point_functions(self) -> None:
        ctx, sides = self.ctx, self.sides
        cluster = aurora.describe_cluster(ctx, self.target.ref) or {}
        endpoint = str(cluster.get("Endpoint", ""))
        if self.how != "detach-and-promote":
            self.proc.skip(
                "endpoint",
                "point functions at the new writer",
                "the global writer endpoint follows the writer",
            )
            fresh = aurora.global_view(ctx, sides.new_region, self.identifier)
            self.host = (fresh.endpoint if fresh else None) or endpoint
            return
        with self.proc.step(
            "endpoint", "point the survivor's functions at the promoted cluster"
        ) as step:
            step.notes.extend(
                functions.repoint_db_host(ctx, sides.new_role, sides.new_region, endpoint)
            )
        self.host = endpoint

    def secrets(self) -> None:
        ctx, sides = self.ctx, self.sides
        title = f"secrets in {sides.new_region}: replicas promoted, host moved"
        with self.proc.step("secrets", title) as step:
            for name in credentials.secret_names(ctx.env):
                step.note(credentials.promote_replica(ctx, sides.new_region, name))
            master = credentials.arn(ctx, sides.new_region, names.master_secret(ctx.env))
            for name in credentials.secret_names(ctx.env):
                step.note(
                    credentials.point_host(
                        ctx, sides.new_region, name, self.host, self.target.ref.identifier, master
                    )
                )

    def rotation(self) -> None:
        ctx, sides = self.ctx, self.sides
        with self.proc.step("rotation", f"secret rotation moves to {sides.new_region}") as step:
            try:
                plan = ctx.plan(sts_region=sides.new_region)  # STS of the failed region: no
                step.notes.extend(rotation.take_over(ctx, plan, sides.new_role))
            except (DrctlError, ClientError, BotoCoreError) as exc:
                step.outcome = "degraded"
                step.note(
                    f"rotation NOT moved ({exc}); the passwords do not change meanwhile. Run "
                    f"`drctl failover --env {ctx.env} --to {sides.new_region}` again: it skips "
                    "what is done"
                )

    def redrive(self) -> None:
        sides = self.sides
        with self.proc.step("redrive", f"redrive {sides.new_region}'s standby queue") as step:
            result = redrive.redrive_queue(
                self.ctx,
                purpose=Queue.STANDBY,
                source_role=sides.new_role,
                source_region=sides.new_region,
                target_role=sides.new_role,
                target_region=sides.new_region,
                parallel=self.options.parallel,
            )
            step.notes.extend(result.lines())
            self.proc.facts["redrive"] = [result.as_dict()]
            if result.failed:
                step.outcome = "degraded"


def run(ctx: Context, options: FailoverOptions) -> int:
    return Failover(ctx, options).run()
