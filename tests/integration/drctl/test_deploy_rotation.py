"""`drctl deploy` and the `deploy: failover` stack (the secondary's secret rotation): never
created by a deploy, updated by one while it exists (after a failover made it)."""

from __future__ import annotations

import io

import pytest

from ops.drctl import deploy
from ops.drctl.console import Console
from ops.drctl.context import Context
from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ENV, PRIMARY, SECONDARY
from tests.integration.drctl.world import _add_rotation_stacks

pytestmark = pytest.mark.integration

BUDGET = ("--param", "budget.BudgetEmail=ops@example.com")
SURVIVOR = f"dr-payment-secrets-rotation-secondary-{ENV}"
HOME = f"dr-payment-secrets-rotation-primary-{ENV}"


@pytest.fixture
def h(harness: Harness) -> Harness:
    _add_rotation_stacks(harness)
    for region in (PRIMARY, SECONDARY):
        for path in ("aurora/master-secret-arn", "aurora/app-secret-arn"):
            harness.client("ssm", region).put_parameter(
                Name=f"/dr-payment/{ENV}/{path}",
                Value=f"arn:aws:secretsmanager:{region}:123456789012:secret:{path}-AbCdEf",
                Type="String",
            )
    return harness


def _stacks(h: Harness, region: str) -> set[str]:
    summaries = h.client("cloudformation", region).list_stacks()["StackSummaries"]
    return {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"}


def test_a_deploy_makes_the_primarys_rotation_and_never_the_secondarys(h: Harness) -> None:
    result = h.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    assert HOME in _stacks(h, PRIMARY)
    assert SURVIVOR not in _stacks(h, SECONDARY)
    line = next(line for line in result.out.splitlines() if "secrets-rotation-secondary" in line)
    assert line.endswith("not deployed (drctl failover makes it)")
    assert "secrets-rotation-secondary" in h.drctl("deploy", "--dry-run", *BUDGET).out


def test_once_a_failover_made_it_a_deploy_keeps_it_current(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    ctx = Context(
        env=ENV,
        aws=h.factory,
        console=Console(out=io.StringIO(), err=io.StringIO()),
        plan_path=h.plan,
    )
    plan = ctx.plan(sts_region=SECONDARY)
    made = deploy.deploy_stack(ctx, plan, plan.get("secrets-rotation-secondary"))
    assert made.action == "created" and SURVIVOR in _stacks(h, SECONDARY)
    h.recorder.clear()

    result = h.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if "secrets-rotation-secondary" in line)
    assert line.endswith("unchanged")
    assert [c.region for c in h.recorder.calls if c.params.get("StackName") == SURVIVOR]
