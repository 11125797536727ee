"""The region-control adapter against moto's DynamoDB (the table from infra-global/tables.yaml):
the epoch only grows, a stale writer cannot flip the item back, `ensure` never overwrites, and
the processor's region gate reads the same item."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.sandbox import resources
from shared import names
from shared.adapters.dynamodb import DynamoRegionGate
from shared.adapters.region_control import DynamoRegionControl, WriteOutcome
from shared.errors import RegionStateUnavailable
from shared.region_control import NO_REGION, RegionControl

pytestmark = pytest.mark.integration
ENV, E, W = "test", "us-east-1", "us-west-2"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=E)
        resources.create_tables(client, ENV)
        yield client


def test_a_writer_holding_an_older_epoch_cannot_flip_the_item_back(dynamodb: Any) -> None:
    control = DynamoRegionControl(dynamodb, names.region_control_table(ENV))
    assert control.write(RegionControl(E, 1)).outcome is WriteOutcome.WRITTEN
    seen_by_both = control.read()
    assert seen_by_both is not None
    # operator A fails over; operator B, who read the same epoch, then tries to switch back
    failover = seen_by_both.successor(W, actor="A", at="t1")
    switch_back = seen_by_both.successor(E, actor="B", at="t2")
    assert control.write(failover).outcome is WriteOutcome.WRITTEN

    stale = control.write(switch_back)

    assert stale.outcome is WriteOutcome.STALE and not stale.applied
    assert stale.current == failover
    assert control.read() == failover
    # a lower epoch is refused as well, whatever it says
    assert control.write(RegionControl(E, 1, "t3", "old drctl")).outcome is WriteOutcome.STALE
    # the same state again (a retried step) is no change, and no error
    assert control.write(failover).outcome is WriteOutcome.UNCHANGED
    assert control.write(failover.successor(NO_REGION, actor="C", at="t4")).applied


def test_ensure_writes_only_when_there_is_no_item(dynamodb: Any) -> None:
    control = DynamoRegionControl(dynamodb, names.region_control_table(ENV))
    assert control.ensure(RegionControl(E, 1, "t0", "drctl deploy")).outcome is WriteOutcome.WRITTEN
    control.write(RegionControl(W, 5, "t1", "drctl failover"))

    again = control.ensure(RegionControl(E, 1, "t2", "drctl deploy"))

    assert again.outcome is WriteOutcome.UNCHANGED
    assert control.read() == RegionControl(W, 5, "t1", "drctl failover")


def test_the_region_gate_reads_the_same_item_and_fails_closed(dynamodb: Any) -> None:
    table = names.region_control_table(ENV)
    control = DynamoRegionControl(dynamodb, table)
    east = DynamoRegionGate(dynamodb, table, E, cache_seconds=0)
    west = DynamoRegionGate(dynamodb, table, W, cache_seconds=0)
    assert not east.is_active() and not west.is_active()  # no item: both passive
    control.write(RegionControl(E, 1))
    assert east.is_active() and not west.is_active()
    control.write(RegionControl(NO_REGION, 2))
    assert not east.is_active() and not west.is_active()


def test_an_unreadable_item_is_a_clear_transient_error(dynamodb: Any) -> None:
    missing = DynamoRegionControl(dynamodb, "dr-payment-region-control-nope")
    with pytest.raises(RegionStateUnavailable, match="ResourceNotFoundException"):
        missing.read()
    with pytest.raises(RegionStateUnavailable):
        missing.write(RegionControl(E, 1))
