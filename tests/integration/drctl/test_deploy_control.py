"""`drctl deploy` makes the primary region active on a fresh environment, before the regional
stacks start their functions, and never overwrites a control item that exists."""

from __future__ import annotations

import pytest

from ops.sandbox import resources
from shared import names, region_control
from shared.region_control import RegionControl
from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ENV, PRIMARY, SECONDARY

pytestmark = pytest.mark.integration


def _tables(h: Harness) -> None:
    for region in (PRIMARY, SECONDARY):
        resources.create_tables(h.client("dynamodb", region), ENV)


def _control(h: Harness, region: str) -> RegionControl | None:
    item = (
        h.client("dynamodb", region)
        .get_item(
            TableName=names.region_control_table(ENV), Key=region_control.key(), ConsistentRead=True
        )
        .get("Item")
    )
    return region_control.from_item(item)


def test_a_fresh_environment_gets_the_primary_region_active_before_the_sam_stacks(
    harness: Harness,
) -> None:
    _tables(harness)

    result = harness.drctl("deploy", "--param", "budget.BudgetEmail=ops@example.com")

    assert result.code == 0, result.err
    for region in (PRIMARY, SECONDARY):
        held = _control(harness, region)
        assert held is not None
        assert (held.active_region, held.epoch, held.updated_by) == (PRIMARY, 1, "drctl deploy")
    order = [(c.service, c.operation) for c in harness.recorder.calls]
    assert order.index(("dynamodb", "PutItem")) < order.index(("sam", "deploy"))


def test_an_existing_control_item_is_never_overwritten(harness: Harness) -> None:
    _tables(harness)
    failed_over = RegionControl(SECONDARY, 9, "t", "drctl failover")
    for region in (PRIMARY, SECONDARY):
        harness.client("dynamodb", region).put_item(
            TableName=names.region_control_table(ENV), Item=region_control.to_item(failed_over)
        )

    result = harness.drctl("deploy", "--param", "budget.BudgetEmail=ops@example.com")

    assert result.code == 0, result.err
    assert _control(harness, PRIMARY) == failed_over
    assert _control(harness, SECONDARY) == failed_over
    assert "region-control item kept: active=us-west-2 epoch=9" in result.err
