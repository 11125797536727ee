"""`drctl switchover`: planned change of the writing region, RPO 0, both regions up.

 1. check    both regions answer; the target's cluster is a healthy member of the global cluster
 2. fence    control item -> none (both replicas), the old region's processor at concurrency 0;
             both event rules stay on (a disabled rule drops events; a throttled processor's
             events wait in Lambda's queue), the new region's turned on if a fence left it off
 3. promote  switchover-global-cluster, wait until the target cluster is the writer
 4. control  control item -> the new region, one epoch later (both replicas)
 5. secrets  `host` -> the global writer endpoint (primary copy; it replicates); rotation stays
             where the primary copy is and reaches the new writer over the peering
 6. unfence  the new region's processor on; the old region's too, now passive (it parks
             what it receives in its standby queue, for the next change)
 7. redrive  the new region's standby queue through its processor (what it set aside while
             passive or fenced: DUPLICATE for what the old writer had, processed otherwise)

Refused, with a clear message, when the old writer does not answer: switchover-global-cluster
needs it to hand over (in a real outage it fails); that is `drctl failover`. Refused too while
the secrets are split after a failover: going back is `drctl failback`. Every step is
idempotent, so an interrupted run is finished by running it again (with --to, since the
control item may then name no region).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import aurora, control, credentials, fence, names, redrive, rotation, topology
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused
from ops.drctl.procedure import Procedure
from shared.names import Queue
from shared.region_control import NO_REGION

ACTOR = "drctl switchover"


@dataclass(frozen=True)
class SwitchOptions:
    to: str | None = None
    dry_run: bool = False
    report: Path | None = None
    parallel: int = redrive.DEFAULT_PARALLEL


def _refuse_unreachable(region: str, why: str) -> Refused:
    return Refused(
        f"the current writer region {region} does not answer ({why}). A planned switchover "
        "needs it: switchover-global-cluster waits for the old writer to hand over and fails in "
        "a real outage. If the region is down, run `drctl failover` instead (it may lose what "
        "had not replicated, and redrives and reconciles after)."
    )


def check(ctx: Context, to: str | None) -> tuple[topology.Sides, aurora.GlobalView]:
    """Both regions answer and Aurora is ready; refuses otherwise, before any change."""
    roles = ctx.region_roles()
    readings = control.read_all(ctx, roles.values())
    sides = topology.sides(ctx, to, readings)
    old = next(r for r in readings if r.region == sides.old_region)
    if not old.answered:
        raise _refuse_unreachable(sides.old_region, old.error or "no answer")
    identifier = names.global_cluster(ctx.env)
    try:
        view = aurora.global_view(ctx, sides.old_region, identifier, bounded=True)
    except (ClientError, BotoCoreError) as exc:
        raise _refuse_unreachable(sides.old_region, type(exc).__name__) from exc
    if view is None:
        raise DrctlError(f"global cluster {identifier} not found: nothing to switch over")
    target = view.member_in(sides.new_region)
    if target is None:
        raise DrctlError(
            f"{identifier} has no member in {sides.new_region}: the target cluster is not a "
            "secondary of the global database (after a detach-and-promote use `drctl failback`)"
        )
    why = _split_secrets(ctx, sides)
    if why:
        raise Refused(
            f"the database secrets are split since a failover ({why}): a switchover would leave "
            f"{sides.new_region}'s functions on stale passwords. Run `drctl failback --env "
            f"{ctx.env}` instead: the same switchover, which also restores the secrets' "
            "replication and moves rotation back"
        )
    return sides, view


def _split_secrets(ctx: Context, sides: topology.Sides) -> str | None:
    """Why the old region's secrets, not the new one's, are the ones in use, or None."""
    try:
        spec = rotation.stack_for(ctx.plan(), sides.old_role)
    except DrctlError:
        spec = None  # a plan without rotation stacks: the secrets alone decide
    if spec is not None and spec.failover_only and ctx.cfn(spec.region).describe(spec.name):
        return f"rotation runs in {sides.old_region} ({spec.name})"
    for name in credentials.secret_names(ctx.env):
        why = credentials.diverged(ctx, sides.old_region, sides.new_region, name)
        if why:
            return why
    return None


def cut_over(
    ctx: Context,
    proc: Procedure,
    sides: topology.Sides,
    view: aurora.GlobalView,
    *,
    parallel: int,
    restore_secrets: bool = False,
) -> None:
    """Steps 2-7, shared with failback once the old primary is a secondary again (which also
    restores the secrets' replication from the old primary, `restore_secrets`)."""
    identifier = view.identifier
    target = view.member_in(sides.new_region)
    assert target is not None  # check() made sure
    with proc.step(
        "fence", f"fence {sides.old_region} (control item none, processor at concurrency 0)"
    ) as step:
        moved = (
            control.move(
                ctx, NO_REGION, must=sides.new_region, also=[sides.old_region], actor=ACTOR
            )
            if not _already_active(ctx, sides.new_region)
            else None
        )
        if moved is None:
            step.note("control item already names the target: fence kept as it is")
        else:
            step.notes.extend(f"control item {note}" for note in moved.notes)
        # A planned change drops no event: rules stay on and the old region's processor is held
        # at 0 (Lambda keeps its events and retries them; once unfenced, passive, it parks
        # them). A disabled rule would drop what it receives, and an event published just
        # before the other region's rule came back on can reach it by replication just after:
        # the drill lost payments that way. The target's rule is turned on if a failover's
        # fence left it off; it writes nothing before the control step (control item none).
        step.note(fence.enable_event_rule(ctx, sides.new_role, sides.new_region))
        step.note(fence.stop_processor(ctx, sides.old_role, sides.old_region))
    with proc.step("promote", f"switchover-global-cluster to {target.ref.identifier}") as step:
        if view.writer is not None and view.writer.arn == target.arn:
            step.outcome = "skipped"
            step.note(f"{target.ref.identifier} is already the writer")
        else:
            aurora.switchover(ctx, sides.new_region, identifier, target.arn)
            aurora.wait_for_writer(ctx, sides.new_region, identifier, target.arn)
            step.note(f"{target.ref.identifier} ({sides.new_region}) is the writer")
    with proc.step("control", f"control item: active = {sides.new_region}") as step:
        moved = (
            control.move(
                ctx, sides.new_region, must=sides.new_region, also=[sides.old_region], actor=ACTOR
            )
            if not _already_active(ctx, sides.new_region)
            else None
        )
        if moved is None:
            step.outcome = "skipped"
            step.note(f"already active = {sides.new_region}")
        else:
            step.notes.extend(moved.notes)
            proc.facts["epoch"] = moved.target.epoch
    with proc.step("secrets", "database secrets: host -> the global writer endpoint") as step:
        host = _writer_host(ctx, sides.new_region, identifier, target)
        step.notes.extend(
            _restore_secrets(ctx, sides, host)
            if restore_secrets
            else _point_secrets(ctx, sides, host, target.ref.identifier)
        )
    with proc.step(
        "unfence", f"unfence {sides.new_region} (active) and {sides.old_region} (passive)"
    ) as step:
        step.notes.extend(fence.unfence_region(ctx, sides.new_role, sides.new_region))
        step.notes.extend(fence.unfence_region(ctx, sides.old_role, sides.old_region))
    with proc.step("redrive", f"redrive {sides.new_region}'s standby queue") as step:
        result = redrive.redrive_queue(
            ctx,
            purpose=Queue.STANDBY,
            source_role=sides.new_role,
            source_region=sides.new_region,
            target_role=sides.new_role,
            target_region=sides.new_region,
            parallel=parallel,
        )
        step.notes.extend(result.lines())
        proc.facts["redrive"] = [result.as_dict()]
        if result.failed:
            step.outcome = "degraded"


def _point_secrets(ctx: Context, sides: topology.Sides, host: str, cluster: str) -> list[str]:
    """`host` in the primary copy (it replicates); rotation stays where it is."""
    notes = []
    for name in credentials.secret_names(ctx.env):
        home = credentials.primary_copy_region(ctx, [sides.new_region, sides.old_region], name)
        if home is None:
            notes.append(f"{name}: not found")
            continue
        notes.append(credentials.point_host(ctx, home, name, host, cluster))
    return notes


def _restore_secrets(ctx: Context, sides: topology.Sides, host: str) -> list[str]:
    """Failback: the new region's copies become the primary ones again, with the values the old
    region's (standalone since the failover) hold, replicated over those; then rotation on."""
    notes = []
    master = credentials.arn(ctx, sides.new_region, names.master_secret(ctx.env))
    for name in credentials.secret_names(ctx.env):
        notes += credentials.restore_replication(
            ctx, sides.new_region, sides.old_region, name, host, master
        )
    notes += [
        credentials.resume_rotation(ctx, sides.new_region, name)
        for name in credentials.secret_names(ctx.env)
    ]
    return notes


def _already_active(ctx: Context, region: str) -> bool:
    reading = control.read(ctx, region, bounded=False)
    return reading.control is not None and reading.control.names(region)


def _writer_host(ctx: Context, region: str, identifier: str, target: aurora.Member) -> str:
    """The global writer endpoint (it follows every writer change); the cluster's own writer
    endpoint where Aurora has none."""
    view = aurora.global_view(ctx, region, identifier)
    if view is not None and view.endpoint:
        return view.endpoint
    cluster = aurora.describe_cluster(ctx, target.ref) or {}
    return str(cluster.get("Endpoint", ""))


def run(ctx: Context, options: SwitchOptions) -> int:
    proc = Procedure(ctx, "switchover")
    with proc.step("check", "check both regions and the global cluster") as step:
        sides, view = check(ctx, options.to)
        step.note(
            f"from {sides.old_region} ({sides.old_role}) to {sides.new_region} ({sides.new_role})"
        )
        writer = view.writer.ref.identifier if view.writer else "none"
        step.note(f"global cluster {view.identifier}: {view.status}, writer {writer}")
    proc.facts.update({"from": sides.old_region, "to": sides.new_region})
    if options.dry_run:
        ctx.console.result(
            f"switchover --env {ctx.env} (dry run, nothing changed): {sides.old_region} -> "
            f"{sides.new_region}; steps: fence, promote, control, secrets, unfence, redrive"
        )
        return EXIT_OK
    cut_over(ctx, proc, sides, view, parallel=options.parallel)
    proc.summary(f"switchover --env {ctx.env}: {sides.old_region} -> {sides.new_region} done")
    proc.write_report(options.report)
    return EXIT_OK
