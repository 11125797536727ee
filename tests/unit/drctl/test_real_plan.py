"""The repository's own plan, infra-global/stacks.yaml, against its templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.drctl.context import DEFAULT_PLAN
from ops.drctl.plan import ROLES, OutputRef, Plan, load_plan
from ops.drctl.template import load_template


@pytest.fixture(params=["dev", "staging", "prod"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return load_plan(DEFAULT_PLAN, env=request.param, account="123456789012")


def _outputs(path: Path) -> set[str]:
    return set(load_template(path).document.get("Outputs") or {})


def test_the_plan_loads_with_both_regions(plan: Plan) -> None:
    # load_plan itself checks: unique ids, every `from:` names an EARLIER stack, every
    # template named exists, placeholders known
    assert plan.regions == {"primary": "us-east-1", "secondary": "us-west-2"}
    assert {spec.role for spec in plan.stacks} == set(ROLES)


def test_every_name_carries_the_environment(plan: Plan) -> None:
    for spec in plan.stacks:
        assert spec.name.startswith("dr-payment-") and spec.name.endswith(f"-{plan.env}")
    pairs = [(spec.name, spec.region) for spec in plan.stacks]
    assert len(pairs) == len(set(pairs))


def test_sam_entries_are_the_regional_stacks(plan: Plan) -> None:
    sam = {spec.role: spec.name for spec in plan.stacks if spec.is_sam}
    assert sam == {role: f"dr-payment-{role}-{plan.env}" for role in ROLES}


def test_every_parameter_is_declared_and_every_reference_is_an_output(plan: Plan) -> None:
    for spec in plan.stacks:
        if spec.is_sam:
            continue
        declared = load_template(plan.template_path(spec)).parameters
        assert set(spec.parameters) <= set(declared), spec.id
        for value in spec.parameters.values():
            if isinstance(value, OutputRef):
                source = plan.get(value.stack_id)
                assert source.order < spec.order
                if not source.is_sam:
                    assert value.output in _outputs(plan.template_path(source)), (spec.id, value)


def test_teardown_order_of_the_real_plan(plan: Plan) -> None:
    from ops.drctl.teardown import stack_order

    order = stack_order(plan)
    front = [spec.id for spec in order.front]
    assert front[0] == "dns"
    assert {"sam-primary", "sam-secondary"} <= set(front)
    # hosted rotation functions sit in the VPC too: gone before the ENI wait
    assert {"secrets-rotation-primary", "secrets-rotation-secondary"} <= set(front)
    assert [spec.id for spec in order.aurora] == ["aurora-secondary", "aurora-primary"]
    rest = [spec.id for spec in order.rest]
    assert rest.index("params-primary") < rest.index("secrets") < rest.index("data")
    assert rest.index("buckets-primary") < rest.index("buckets-secondary")
    assert rest.index("peering-routes") < rest.index("peering") < rest.index("network-primary")
    every = front + [spec.id for spec in order.aurora] + rest
    assert sorted(every) == sorted(plan.ids())


def test_rotation_runs_in_the_primary_and_only_after_a_failover_in_the_secondary(
    plan: Plan,
) -> None:
    rotation = {s.role: s for s in plan.stacks if s.template == "secrets-rotation.yaml"}

    assert set(rotation) == set(ROLES)
    assert not rotation["primary"].failover_only
    assert rotation["secondary"].failover_only  # made by drctl failover, never by deploy
    assert [s.id for s in plan.stacks if s.failover_only] == [rotation["secondary"].id]
    for role, spec in rotation.items():
        assert spec.parameters["Role"] == role
        # Everything it takes comes from its own region: made while the other one is down.
        for value in spec.parameters.values():
            if isinstance(value, OutputRef):
                assert plan.get(value.stack_id).region == spec.region, (spec.id, value)
        # The secret ARNs: this region's SSM parameters, published by its params stack first.
        params = next(s for s in plan.stacks if s.template == "params.yaml" and s.role == role)
        assert params.order < spec.order
        published = load_template(plan.template_path(params)).document["Resources"]
        paths = {
            str(r["Properties"]["Name"]["Fn::Sub"]).replace("${Environment}", plan.env)
            for r in published.values()
        }
        for key in ("MasterSecretArn", "AppSecretArn"):
            assert spec.parameters[key] in paths, (spec.id, key)
