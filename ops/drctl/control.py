"""The region-control item as drctl sees it: one replica per region, read and moved through the
shared contract (shared/region_control.py + its adapter), so drctl, the functions and the
sandbox cannot disagree on its key, attributes or epoch rule.

drctl writes the item in every region it can reach, the region that must hold it first. In
AWS the global table replicates it anyway; writing each replica means a region that reads its
own replica sees the change at once, and the conditional write makes the second write a no-op
when replication got there first (same state = UNCHANGED).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import names
from ops.drctl.context import Context
from ops.drctl.errors import DrctlError
from shared import region_control
from shared.adapters.region_control import DynamoRegionControl, WriteOutcome
from shared.errors import RegionStateUnavailable
from shared.region_control import RegionControl


class StaleControl(DrctlError):
    """The item changed under us (someone else moved it): nothing was overwritten."""


@dataclass(frozen=True)
class Reading:
    region: str
    control: RegionControl | None = None
    error: str | None = None  # the replica could not be read (region down, no table)

    @property
    def answered(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error is not None:
            return f"unreachable ({self.error})"
        if self.control is None:
            return "no item (every region is passive)"
        return f"active={self.control.active_region} epoch={self.control.epoch}"


def replica(ctx: Context, region: str, *, bounded: bool = False) -> DynamoRegionControl:
    client = ctx.aws.client("dynamodb", region, bounded=bounded)
    return DynamoRegionControl(client, names.region_control_table(ctx.env))


def _why(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"[:200]


def read(ctx: Context, region: str, *, bounded: bool = True) -> Reading:
    try:
        return Reading(region, replica(ctx, region, bounded=bounded).read())
    except (RegionStateUnavailable, ClientError, BotoCoreError) as exc:
        return Reading(region, error=_why(exc))


def read_all(ctx: Context, regions: Iterable[str], *, bounded: bool = True) -> list[Reading]:
    return [read(ctx, region, bounded=bounded) for region in regions]


def newest(readings: Iterable[Reading]) -> RegionControl | None:
    """The state with the highest epoch among the replicas that answered."""
    found = [r.control for r in readings if r.control is not None]
    return max(found, key=lambda control: control.epoch) if found else None


@dataclass(frozen=True)
class Move:
    target: RegionControl
    notes: tuple[str, ...]


def move(
    ctx: Context,
    active_region: str,
    *,
    must: str,
    also: Iterable[str] = (),
    actor: str,
    readings: Iterable[Reading] | None = None,
) -> Move:
    """Set the active region (or NO_REGION) one epoch above the newest state seen.

    Written in `must` first: if that replica is stale (someone moved the item meanwhile) the
    move stops with StaleControl and nothing else is written. Then in each of `also`, bounded
    (a dead region costs seconds) and best effort: what could not be written there is noted.
    """
    seen = list(readings) if readings is not None else read_all(ctx, [must, *also])
    current = newest(seen)
    at = ctx.stamp()
    target = (
        region_control.first(active_region, actor=actor, at=at)
        if current is None
        else current.successor(active_region, actor=actor, at=at)
    )
    result = replica(ctx, must).write(target)
    if not result.applied:
        held = result.current
        raise StaleControl(
            f"region-control item in {must} moved meanwhile (now "
            f"{held.active_region if held else '?'}, epoch {held.epoch if held else '?'}; we "
            f"meant epoch {target.epoch}): someone else is changing regions. Nothing was "
            "overwritten; check `drctl status`, then re-run."
        )
    notes = [f"{must}: active={target.active_region} epoch={target.epoch} ({result.outcome})"]
    for region in also:
        try:
            other = replica(ctx, region, bounded=True).write(target)
        except (RegionStateUnavailable, ClientError, BotoCoreError) as exc:
            notes.append(
                f"{region}: not written ({_why(exc)}); its replica converges by replication"
            )
            continue
        if other.outcome is WriteOutcome.STALE and other.current is not None:
            notes.append(
                f"{region}: holds a newer state (active={other.current.active_region} "
                f"epoch={other.current.epoch}): left alone"
            )
        else:
            notes.append(f"{region}: {other.outcome}")
    return Move(target, tuple(notes))


def ensure_active(ctx: Context, regions_by_role: dict[str, str], *, actor: str) -> list[str]:
    """A fresh environment: active = the primary region, written only where there is no item
    (never overwrites). Returns what happened per region."""
    primary = regions_by_role["primary"]
    wanted = region_control.first(primary, actor=actor, at=ctx.stamp())
    notes = []
    for region in [primary, *(r for r in regions_by_role.values() if r != primary)]:
        try:
            result = replica(ctx, region).ensure(wanted)
        except RegionStateUnavailable as exc:
            notes.append(f"{region}: region-control item not ensured ({_why(exc)})")
            continue
        current = result.current
        if result.outcome is WriteOutcome.WRITTEN:
            notes.append(f"{region}: region-control item created: active={primary} epoch=1")
        elif current is not None:
            notes.append(
                f"{region}: region-control item kept: active={current.active_region} "
                f"epoch={current.epoch}"
            )
    return notes


def writer_outside_active(
    ctx: Context, regions: Iterable[str], global_cluster: dict[str, Any]
) -> str | None:
    """Why the global writer endpoint must NOT be published, or None. After a detach-and-promote
    the global cluster's writer is the old region's stale cluster while the control item names
    the survivor: publishing its endpoint would point the survivor's next deploy at it."""
    writer = next(
        (m for m in global_cluster.get("GlobalClusterMembers", []) if m.get("IsWriter")), None
    )
    current = newest(read_all(ctx, regions))
    if writer is None or current is None or current.fenced:
        return None
    writer_region = str(writer["DBClusterArn"]).split(":")[3]
    if writer_region == current.active_region:
        return None
    return (
        f"the global cluster's writer is in {writer_region} but {current.active_region} is active "
        "(a detach-and-promote): `drctl failback` rebuilds the global cluster first"
    )
