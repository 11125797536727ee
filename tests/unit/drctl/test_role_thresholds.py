"""The plan carries per-role alarm thresholds to the regional stacks: each is a parameter
template.yaml declares, and the normally passive secondary tolerates its normal standby backlog."""

from __future__ import annotations

from ops.drctl.context import DEFAULT_PLAN, DEFAULT_ROOT
from ops.drctl.plan import load_plan
from ops.drctl.template import load_template


def test_the_regional_stacks_parameters_are_declared_and_per_role() -> None:
    plan = load_plan(DEFAULT_PLAN, env="dev", account="123456789012")
    declared = load_template(DEFAULT_ROOT / "template.yaml").parameters
    sam = {spec.role: spec.parameters for spec in plan.stacks if spec.is_sam}
    for parameters in sam.values():
        assert set(parameters) <= set(declared)
    primary = int(str(sam["primary"]["StandbyDepthAlarmThreshold"]))
    secondary = int(str(sam["secondary"]["StandbyDepthAlarmThreshold"]))
    assert primary < 1000 < secondary  # a passive region's normal backlog must not alarm
