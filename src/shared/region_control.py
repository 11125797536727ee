"""The region-control item: which region may write payments, and the epoch that orders changes.

One item in the region-control global table (infra-global/tables.yaml), read by every
processor's region gate and health check in its own region's replica, written only by drctl
(deploy, fence, switchover, failover, failback, teardown) and by the sandbox's seeding.

The epoch only grows. A write carries the epoch it means to set and is conditioned on the
stored epoch being lower, so a writer that read an older state (a second operator, a retried
step, an old drctl) cannot flip the item back. What it does NOT protect: the condition is
checked in the replica written to, and the global table resolves concurrent writes in
different regions by last writer wins, so two writers in two regions during a partition can
both succeed (docs/decisions.md, issue 9). Aurora's single writer is the hard fence behind it.

Pure data and rules; the DynamoDB calls are in shared/adapters/region_control.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PARTITION_KEY = "pk"
ITEM_KEY = "active-region"
ACTIVE_REGION = "active_region"
EPOCH = "epoch"
UPDATED_AT = "updated_at"
UPDATED_BY = "updated_by"
NO_REGION = "none"  # fenced: no region may write


@dataclass(frozen=True)
class RegionControl:
    active_region: str  # a region name, or NO_REGION
    epoch: int
    updated_at: str = ""
    updated_by: str = ""

    def names(self, region: str) -> bool:
        """True when this item makes `region` the one that writes."""
        return self.active_region == region

    @property
    def fenced(self) -> bool:
        return self.active_region == NO_REGION

    def successor(self, active_region: str, *, actor: str, at: str) -> RegionControl:
        """The next state: another (or the same) active region, one epoch later."""
        return RegionControl(active_region, self.epoch + 1, at, actor)

    def same_state(self, other: RegionControl | None) -> bool:
        """Same active region and epoch (who wrote it, and when, does not matter)."""
        return other is not None and (other.active_region, other.epoch) == (
            self.active_region,
            self.epoch,
        )


def first(active_region: str, *, actor: str, at: str) -> RegionControl:
    """The item a fresh environment starts with (epoch 1)."""
    return RegionControl(active_region, 1, at, actor)


def key() -> dict[str, Any]:
    return {PARTITION_KEY: {"S": ITEM_KEY}}


def to_item(control: RegionControl) -> dict[str, Any]:
    return {
        **key(),
        ACTIVE_REGION: {"S": control.active_region},
        EPOCH: {"N": str(control.epoch)},
        UPDATED_AT: {"S": control.updated_at},
        UPDATED_BY: {"S": control.updated_by},
    }


def from_item(item: dict[str, Any] | None) -> RegionControl | None:
    """None when there is no item. An item without an epoch (written by hand) counts as 0."""
    if not item:
        return None
    return RegionControl(
        active_region=str(item.get(ACTIVE_REGION, {}).get("S", NO_REGION)),
        epoch=int(item.get(EPOCH, {}).get("N", "0")),
        updated_at=str(item.get(UPDATED_AT, {}).get("S", "")),
        updated_by=str(item.get(UPDATED_BY, {}).get("S", "")),
    )


def newer_epoch_condition(control: RegionControl) -> dict[str, Any]:
    """PutItem condition arguments: the item is absent, or holds an older epoch than `control`."""
    return {
        "ConditionExpression": "attribute_not_exists(#pk) OR #epoch < :epoch",
        "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#epoch": EPOCH},
        "ExpressionAttributeValues": {":epoch": {"N": str(control.epoch)}},
    }


def absent_condition() -> dict[str, Any]:
    """PutItem condition arguments: only when there is no item yet."""
    return {
        "ConditionExpression": "attribute_not_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
    }
