"""drctl deploy against moto: order, cross-region parameters, idempotency, resume, dry run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, SECONDARY

BUDGET = ("--param", "budget.BudgetEmail=ops@example.com")
CFN_ORDER = [
    ("network-primary", PRIMARY),
    ("network-secondary", SECONDARY),
    ("peering", PRIMARY),
    ("peering-routes", SECONDARY),
    ("keys-primary", PRIMARY),
    ("keys-secondary", SECONDARY),
    ("data", PRIMARY),
    ("buckets-secondary", SECONDARY),
    ("buckets-primary", PRIMARY),
    ("aurora-primary", PRIMARY),
    ("aurora-secondary", SECONDARY),
    ("params-primary", PRIMARY),
    ("params-secondary", SECONDARY),
]


def stack(stack_id: str) -> str:
    return f"dr-payment-{stack_id}-{ENV}"


def parameters(h: Harness, stack_id: str, region: str) -> dict[str, str]:
    found = h.client("cloudformation", region).describe_stacks(StackName=stack(stack_id))
    return {p["ParameterKey"]: p["ParameterValue"] for p in found["Stacks"][0]["Parameters"]}


def executed(h: Harness) -> list[str]:
    return [c.params["StackName"] for c in h.recorder.calls if c.operation == "ExecuteChangeSet"]


def _moto_stack(region: str, name: str) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[ACCOUNT][region]
    return next(s for s in backend.stacks.values() if s.name == name)


def test_deploys_every_stack_in_plan_order_passing_outputs_across_regions(h: Harness) -> None:
    result = h.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    steps = [
        (c.params["StackName"], c.region)
        for c in h.recorder.calls
        if c.operation == "CreateChangeSet" or c.service == "sam"
    ]
    expected = [(stack(i), r) for i, r in CFN_ORDER]
    expected += [(f"dr-payment-primary-{ENV}", PRIMARY), (f"dr-payment-secondary-{ENV}", SECONDARY)]
    expected += [(stack("dns"), PRIMARY), (stack("budget"), PRIMARY)]
    assert steps == expected
    # a us-west-2 output arrives as a us-east-1 parameter, and back again
    assert parameters(h, "peering", PRIMARY)["PeerVpcId"] == f"vpc-network-secondary-{ENV}"
    assert parameters(h, "peering-routes", SECONDARY)["PeeringConnectionId"] == (
        f"pcx-from-vpc-network-secondary-{ENV}"
    )
    assert parameters(h, "buckets-primary", PRIMARY)["ReplicaBucketName"] == (
        f"dr-payment-docs-secondary-{ENV}-{ACCOUNT}"
    )
    marker = h.client("ssm", PRIMARY).get_parameter(Name=f"/it/{ENV}/peering")["Parameter"]
    assert marker["Value"] == f"vpc-network-secondary-{ENV}@{SECONDARY}"
    assert "created" in result.out and "==> 3. dr-payment-peering-it (us-east-1)" in result.err


def test_sam_stacks_deploy_the_built_template_with_this_envs_parameters(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0

    primary, secondary = h.sam.commands
    assert primary[:2] == ["sam", "deploy"]
    assert primary[primary.index("--config-env") + 1] == "primary"
    assert primary[primary.index("--stack-name") + 1] == f"dr-payment-primary-{ENV}"
    assert primary[primary.index("--region") + 1] == PRIMARY
    assert primary[primary.index("--template-file") + 1].endswith(".aws-sam/build/template.yaml")
    assert {"--no-confirm-changeset", "--no-fail-on-empty-changeset"} <= set(primary)
    overrides = primary[primary.index("--parameter-overrides") + 1 : primary.index("--tags")]
    assert overrides == [
        f"Environment={ENV}",
        "RegionRole=primary",
        'DeployRevision=""',
        f"SessionsTableName=/dr-payment/{ENV}/dynamodb/sessions-table-name",
    ]
    assert secondary[secondary.index("--region") + 1] == SECONDARY
    assert "RegionRole=secondary" in secondary


def test_a_rerun_with_nothing_changed_executes_no_change_set(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    h.recorder.clear()

    result = h.drctl("deploy")  # BudgetEmail now comes from the deployed stack

    assert result.code == 0, result.err
    assert h.recorder.count("ExecuteChangeSet") == 0
    assert h.recorder.count("DeleteStack") == 0
    assert result.out.count("unchanged") == len(CFN_ORDER) + 2  # + dns, budget


def test_a_changed_parameter_updates_that_stack_only(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    h.recorder.clear()

    result = h.drctl("deploy", "--param", "budget.BudgetEmail=finance@example.com")

    assert result.code == 0, result.err
    assert executed(h) == [stack("budget")]
    kinds = {
        c.params["StackName"]: c.params["ChangeSetType"]
        for c in h.recorder.calls
        if c.operation == "CreateChangeSet"
    }
    assert kinds[stack("budget")] == "UPDATE"
    assert parameters(h, "budget", PRIMARY)["BudgetEmail"] == "finance@example.com"


def _fail_once(stack_name: str, region: str) -> Any:
    """An after-call hook: the first execution of `stack_name` ends in ROLLBACK_COMPLETE."""
    state = {"failed": False}

    def hook(client: Any, service: str, hook_region: str) -> None:
        if service != "cloudformation" or hook_region != region:
            return

        def after(context: dict[str, Any], **_: Any) -> None:
            if state["failed"] or context["drctl_test_params"]["StackName"] != stack_name:
                return
            state["failed"] = True
            planted = _moto_stack(region, stack_name)
            planted.status = "ROLLBACK_COMPLETE"
            planted._add_stack_event("CREATE_FAILED", resource_status_reason="Route limit exceeded")

        client.meta.events.register("after-call.cloudformation.ExecuteChangeSet", after)

    return hook


def test_resume_after_a_failed_stack_keeps_what_finished(h: Harness) -> None:
    h.add_hook(_fail_once(stack("peering-routes"), SECONDARY))
    first = h.drctl("deploy", *BUDGET)
    assert first.code == 1
    assert "Route limit exceeded" in first.err
    assert executed(h)[-1] == stack("peering-routes")
    h.recorder.clear()

    second = h.drctl("deploy", *BUDGET)

    assert second.code == 0, second.err
    ran = executed(h)
    assert ran[0] == stack("peering-routes")  # the first three are kept, unchanged
    assert stack("network-primary") not in ran and stack("peering") not in ran
    deletes = [c for c in h.recorder.calls if c.operation == "DeleteStack"]
    assert [c.region for c in deletes] == [SECONDARY]
    assert "recreated" in second.out


def test_update_rollback_complete_is_updated_not_recreated(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    _moto_stack(PRIMARY, stack("network-primary")).status = "UPDATE_ROLLBACK_COMPLETE"
    h.recorder.clear()

    result = h.drctl("deploy", "--param", "network-primary.VpcCidr=10.11.0.0/16")

    assert result.code == 0, result.err
    assert h.recorder.count("DeleteStack") == 0
    assert executed(h) == [stack("network-primary")]


def test_dry_run_on_an_empty_account_shows_the_plan_and_changes_nothing(h: Harness) -> None:
    result = h.drctl("deploy", "--dry-run")

    assert result.code == 0, result.err
    assert [c for c in h.recorder.calls if c.is_write] == []
    assert h.sam.commands == []
    lines = result.out.splitlines()
    assert any(line.split()[:2] == ["3.", "peering"] and "us-east-1" in line for line in lines)
    assert "PeerVpcId = <from network-secondary.VpcId>" in result.out
    assert "PeerRegion = us-west-2" in result.out
    assert result.out.count(" new") >= len(CFN_ORDER)
    assert "needs BudgetEmail" in result.out  # the only value nothing supplies
    assert "needs PeerVpcId" not in result.out


def test_dry_run_after_a_deploy_tells_unchanged_from_to_update(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    h.recorder.clear()

    result = h.drctl("deploy", "--dry-run", "--param", "budget.BudgetEmail=new@example.com")

    assert result.code == 0, result.err
    assert {c.operation for c in h.recorder.calls if c.is_write} == {
        "CreateChangeSet",
        "DeleteChangeSet",
    }
    budget_line = next(line for line in result.out.splitlines() if " budget " in line)
    assert budget_line.endswith("to update")
    assert "unchanged" in next(line for line in result.out.splitlines() if " peering " in line)
    assert "PeerVpcId = vpc-network-secondary-it" in result.out
    created = {
        c.params["ChangeSetName"] for c in h.recorder.calls if c.operation == "CreateChangeSet"
    }
    left = h.client("cloudformation").list_change_sets(StackName=stack("budget"))["Summaries"]
    assert not created & {summary["ChangeSetName"] for summary in left}
    assert parameters(h, "budget", PRIMARY)["BudgetEmail"] == "ops@example.com"


def test_only_deploys_the_named_stacks_using_outputs_already_deployed(h: Harness) -> None:
    assert h.drctl("deploy", "--only", "network-secondary").code == 0
    h.recorder.clear()

    result = h.drctl("deploy", "--only", "peering")

    assert result.code == 0, result.err
    assert executed(h) == [stack("peering")]
    assert parameters(h, "peering", PRIMARY)["PeerVpcId"] == f"vpc-network-secondary-{ENV}"


def test_only_names_an_unknown_stack_is_a_usage_error(h: Harness) -> None:
    result = h.drctl("deploy", "--only", "no-such-stack")
    assert result.code == 2
    assert "no-such-stack" in result.err


def test_a_reference_to_an_undeployed_stack_fails_clearly(h: Harness) -> None:
    result = h.drctl("deploy", "--only", "peering")
    assert result.code == 1
    assert "<from network-secondary.VpcId>" in result.err


def test_template_over_the_body_limit_goes_through_the_artifacts_bucket(h: Harness) -> None:
    dns = h.root / "infra-global" / "dns.yaml"
    dns.write_text(dns.read_text() + "# padding\n" * 6000)  # > 51,200 bytes

    result = h.drctl("deploy", "--only", "dns")

    assert result.code == 0, result.err
    create = next(c for c in h.recorder.calls if c.operation == "CreateChangeSet")
    assert "TemplateBody" not in create.params
    bucket = f"dr-payment-artifacts-primary-{ENV}-{ACCOUNT}"
    assert create.params["TemplateURL"].startswith(f"https://{bucket}.s3.us-east-1.amazonaws.com/")
    assert h.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    assert parameters(h, "dns", PRIMARY)["Marker"] == "dns"


def test_a_failed_sam_deploy_stops_the_run(h: Harness) -> None:
    h.sam.code = 1
    result = h.drctl("deploy", *BUDGET)
    assert result.code == 1
    assert "sam deploy of dr-payment-primary-it exited 1" in result.err
    assert len(h.sam.commands) == 1
    assert stack("dns") not in [c.params.get("StackName") for c in h.recorder.calls]


def test_a_stale_sam_build_is_refused_before_anything_changes(h: Harness) -> None:
    source = h.root / "src" / "handler.py"
    built = (h.root / ".aws-sam" / "build" / "template.yaml").stat().st_mtime
    source.write_text("# edited after the build\n")
    os.utime(source, (built + 60, built + 60))
    result = h.drctl("deploy", *BUDGET)
    assert result.code == 1
    assert "make build" in result.err
    assert [c for c in h.recorder.calls if c.is_write] == []


def test_the_global_writer_endpoint_is_published_before_the_sam_stacks(h: Harness) -> None:
    h.client("rds").create_global_cluster(
        GlobalClusterIdentifier=f"dr-payment-global-{ENV}", Engine="aurora-mysql"
    )
    endpoint = h.client("rds").describe_global_clusters()["GlobalClusters"][0]["Endpoint"]

    assert h.drctl("deploy", *BUDGET).code == 0

    name = f"/dr-payment/{ENV}/aurora/writer-endpoint"
    for region in (PRIMARY, SECONDARY):
        assert h.client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"] == endpoint
    puts = [i for i, c in enumerate(h.recorder.calls) if c.operation == "PutParameter"]
    first_sam = next(i for i, c in enumerate(h.recorder.calls) if c.service == "sam")
    assert len(puts) == 2 and max(puts) < first_sam


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness
