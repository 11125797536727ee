"""Loading the plan: substitution, references, and every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ops.drctl.errors import PlanError
from ops.drctl.plan import OutputRef, load_plan, read_regions, resolve_parameters

REGIONS = {"primary": "us-east-1", "secondary": "us-west-2"}


def write(tmp_path: Path, stacks: list[dict[str, object]], templates: tuple[str, ...] = ()) -> Path:
    infra = tmp_path / "infra-global"
    infra.mkdir(exist_ok=True)
    for name in templates:
        (infra / name).write_text("Resources: {}\n")
    path = infra / "stacks.yaml"
    path.write_text(yaml.safe_dump({"regions": REGIONS, "stacks": stacks}))
    return path


NETWORK = {
    "id": "network-secondary",
    "name": "dr-payment-network-secondary-{env}",
    "template": "network.yaml",
    "region": "secondary",
    "parameters": {"Environment": "{env}", "Cidrs": ["10.20.0.0/16", "10.21.0.0/16"]},
}
PEERING = {
    "id": "peering",
    "name": "dr-payment-peering-{env}",
    "template": "peering.yaml",
    "region": "primary",
    "parameters": {
        "PeerRegion": "{secondary_region}",
        "Owner": "{account}",
        "PeerVpcId": {"from": "network-secondary", "output": "VpcId"},
        "Enabled": True,
    },
}
SAM = {"id": "sam-primary", "name": "dr-payment-{role}-{env}", "kind": "sam", "region": "primary"}


def test_names_and_values_are_substituted_and_references_kept(tmp_path: Path) -> None:
    path = write(tmp_path, [NETWORK, PEERING, SAM], ("network.yaml", "peering.yaml"))

    plan = load_plan(path, env="staging", account="111122223333")

    network, peering, sam = plan.stacks
    assert network.name == "dr-payment-network-secondary-staging"
    assert (network.region, network.order) == ("us-west-2", 1)
    assert network.parameters["Cidrs"] == "10.20.0.0/16,10.21.0.0/16"
    assert peering.parameters["PeerRegion"] == "us-west-2"
    assert peering.parameters["Owner"] == "111122223333"
    assert peering.parameters["Enabled"] == "true"
    assert peering.parameters["PeerVpcId"] == OutputRef("network-secondary", "VpcId")
    assert (sam.is_sam, sam.name, sam.template) == (True, "dr-payment-primary-staging", None)
    assert plan.root == tmp_path
    assert read_regions(path) == REGIONS


def test_resolution_uses_known_outputs_and_lists_the_pending(tmp_path: Path) -> None:
    path = write(tmp_path, [NETWORK, PEERING], ("network.yaml", "peering.yaml"))
    peering = load_plan(path, env="dev", account="1").get("peering")

    resolved, pending = resolve_parameters(peering, {})
    assert "PeerVpcId" not in resolved
    assert [ref.placeholder() for ref in pending] == ["<from network-secondary.VpcId>"]

    resolved, pending = resolve_parameters(peering, {"network-secondary": {"VpcId": "vpc-1"}})
    assert resolved["PeerVpcId"] == "vpc-1" and pending == []


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    later_ref = dict(PEERING, parameters={"X": {"from": "network-secondary", "output": "VpcId"}})
    duplicate = dict(NETWORK, template="missing.yaml")
    bad_region = dict(NETWORK, id="other", region="eu")
    path = write(tmp_path, [later_ref, NETWORK, duplicate, bad_region], ("network.yaml",))

    with pytest.raises(PlanError) as raised:
        load_plan(path, env="dev", account="1")

    message = str(raised.value)
    assert "refers to 'network-secondary', which is not an earlier stack" in message
    assert "duplicate id" in message
    assert "`region` must be primary or secondary" in message
    assert "peering.yaml not found" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (dict(NETWORK, name="x-{nope}"), "unknown placeholder {nope}"),
        (dict(NETWORK, parameters={"A": {"from": "x"}}), "{from: ID, output: KEY}"),
        (dict(NETWORK, kind="sam"), "`template` xor `kind: sam`"),
        (dict(NETWORK, parameters={"A": None}), "parameter A has no value"),
    ],
)
def test_malformed_entries(tmp_path: Path, entry: dict[str, object], expected: str) -> None:
    path = write(tmp_path, [entry], ("network.yaml",))
    with pytest.raises(PlanError, match="problems") as raised:
        load_plan(path, env="dev", account="1")
    assert expected in str(raised.value)


def test_a_missing_or_shapeless_plan_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path / "nope.yaml", env="dev", account="1")
    shapeless = tmp_path / "stacks.yaml"
    shapeless.write_text("regions: {primary: us-east-1}\nstacks: []\n")
    with pytest.raises(PlanError, match="regions"):
        load_plan(shapeless, env="dev", account="1")
    assert read_regions(tmp_path / "nope.yaml") == {}
