"""The region-control item's contract: its mapping to and from DynamoDB, and the epoch rule."""

from __future__ import annotations

from shared import region_control
from shared.region_control import NO_REGION, RegionControl


def test_an_item_round_trips() -> None:
    control = RegionControl("us-west-2", 12, "2026-11-30T04:00:00Z", "drctl failover")
    item = region_control.to_item(control)
    assert item["pk"] == {"S": "active-region"}
    assert item["epoch"] == {"N": "12"}
    assert region_control.from_item(item) == control


def test_no_item_is_none_and_a_hand_written_item_without_epoch_counts_as_zero() -> None:
    assert region_control.from_item(None) is None
    assert region_control.from_item({}) is None
    manual = region_control.from_item({"pk": {"S": "active-region"}, "active_region": {"S": "x"}})
    assert manual == RegionControl("x", 0)


def test_each_change_is_one_epoch_later_and_fencing_names_no_region() -> None:
    first = region_control.first("us-east-1", actor="drctl deploy", at="t0")
    fenced = first.successor(NO_REGION, actor="drctl failover", at="t1")
    moved = fenced.successor("us-west-2", actor="drctl failover", at="t2")
    assert [c.epoch for c in (first, fenced, moved)] == [1, 2, 3]
    assert fenced.fenced and not fenced.names("us-east-1") and not fenced.names("us-west-2")
    assert moved.names("us-west-2")
    assert moved.same_state(RegionControl("us-west-2", 3, "other time", "someone else"))
    assert not moved.same_state(RegionControl("us-east-1", 3))


def test_a_write_is_conditioned_on_an_older_epoch() -> None:
    condition = region_control.newer_epoch_condition(RegionControl("us-west-2", 9))
    assert condition["ConditionExpression"] == "attribute_not_exists(#pk) OR #epoch < :epoch"
    assert condition["ExpressionAttributeValues"] == {":epoch": {"N": "9"}}
    assert region_control.absent_condition()["ConditionExpression"] == "attribute_not_exists(#pk)"
