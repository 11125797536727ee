"""drctl deploy against moto: order, cross-region parameters, idempotency, resume, dry run."""

from __future__ import annotations

import os
import re
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
    assert overrides[:3] == [
        f"Environment={ENV}",
        "RegionRole=primary",
        f"SessionsTableName=/dr-payment/{ENV}/dynamodb/sessions-table-name",
    ]
    assert re.fullmatch(r"DeployRevision=[0-9a-f]{10}", overrides[3])
    assert len(overrides) == 4
    assert secondary[secondary.index("--region") + 1] == SECONDARY
    assert "RegionRole=secondary" in secondary


def revisions(h: Harness) -> dict[str, str]:
    """The DeployRevision each regional stack got in the last deploy."""
    found = {}
    for argv in h.sam.commands:
        stack_name = argv[argv.index("--stack-name") + 1]
        found[stack_name] = next(a for a in argv if a.startswith("DeployRevision=")).split("=")[1]
    return found


def test_an_unchanged_deploy_keeps_the_revision_a_changed_ssm_value_moves_it(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    first = revisions(h)
    assert len(set(first.values())) == 2  # RegionRole differs, so do the revisions
    h.sam.commands.clear()

    assert h.drctl("deploy").code == 0
    assert revisions(h) == first  # same build, parameters and SSM values: same version
    h.sam.commands.clear()

    # only the SSM value changes (a new table name, endpoint, subnet...): the path stays the same
    name = f"/dr-payment/{ENV}/dynamodb/sessions-table-name"
    h.client("ssm", SECONDARY).put_parameter(Name=name, Value="renamed", Overwrite=True)
    assert h.drctl("deploy").code == 0
    after = revisions(h)
    primary, secondary = f"dr-payment-primary-{ENV}", f"dr-payment-secondary-{ENV}"
    assert after[primary] == first[primary]  # its region's value did not change
    assert after[secondary] != first[secondary]


def test_a_changed_build_moves_the_revision(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    first = revisions(h)
    h.sam.commands.clear()
    (h.root / ".aws-sam" / "build" / "handler.py").write_text("# a code change, built\n")

    assert h.drctl("deploy").code == 0

    assert all(revisions(h)[name] != first[name] for name in first)


def test_param_reaches_the_regional_stacks_per_role_and_moves_the_revision(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    first = revisions(h)
    h.sam.commands.clear()

    result = h.drctl("deploy", "--param", "sam-secondary.ParkedDepthAlarmThreshold=5000")

    assert result.code == 0, result.err
    primary, secondary = h.sam.commands
    assert "ParkedDepthAlarmThreshold=5000" in secondary
    assert not any(a.startswith("ParkedDepthAlarmThreshold") for a in primary)
    after = revisions(h)
    assert after[f"dr-payment-secondary-{ENV}"] != first[f"dr-payment-secondary-{ENV}"]
    assert after[f"dr-payment-primary-{ENV}"] == first[f"dr-payment-primary-{ENV}"]


def test_plan_values_for_the_regional_stacks_are_passed(h: Harness) -> None:
    import yaml

    document = yaml.safe_load(h.plan.read_text())
    sam_primary = next(s for s in document["stacks"] if s["id"] == "sam-primary")
    sam_primary["parameters"] = {"ParkedDepthAlarmThreshold": "250"}
    h.plan.write_text(yaml.safe_dump(document, sort_keys=False))

    assert h.drctl("deploy", *BUDGET).code == 0

    primary, secondary = h.sam.commands
    assert "ParkedDepthAlarmThreshold=250" in primary
    assert not any(a.startswith("ParkedDepthAlarmThreshold") for a in secondary)


def test_a_param_the_regional_template_does_not_declare_is_refused(h: Harness) -> None:
    result = h.drctl("deploy", "--dry-run", "--param", "sam-primary.NoSuchThing=1")
    assert result.code == 2
    assert "sam-primary.NoSuchThing" in result.err and "declares no parameter" in result.err
    typo = h.drctl("deploy", "--dry-run", "--param", "ParkedDepthAlarmTreshold=1")
    assert typo.code == 2 and "no template of the plan declares it" in typo.err


def test_dry_run_shows_the_regional_parameters_and_revision(h: Harness) -> None:
    assert h.drctl("deploy", *BUDGET).code == 0
    deployed = revisions(h)[f"dr-payment-primary-{ENV}"]
    h.sam.commands.clear()

    same = h.drctl("deploy", "--dry-run")
    changed = h.drctl("deploy", "--dry-run", "--param", "ParkedDepthAlarmThreshold=7")

    assert same.code == 0 and changed.code == 0, same.err + changed.err
    assert f"DeployRevision = {deployed}" in same.out  # nothing changed: same version
    assert "ParkedDepthAlarmThreshold = 7" in changed.out
    assert f"DeployRevision = {deployed}" not in changed.out
    assert h.sam.commands == []


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


def _global_cluster_without_endpoint(client: Any, service: str, region: str) -> None:
    """A global cluster that exists but reports no writer endpoint (e.g. while its primary is
    still being created, or detached): DescribeGlobalClusters answers without `Endpoint`."""
    if service != "rds":
        return

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        for cluster in parsed.get("GlobalClusters", []):
            cluster.pop("Endpoint", None)

    client.meta.events.register("after-call.rds.DescribeGlobalClusters", strip)


def test_no_global_writer_endpoint_stops_the_deploy_before_the_sam_stacks(h: Harness) -> None:
    h.add_hook(_global_cluster_without_endpoint)

    result = h.drctl("deploy", *BUDGET)

    assert result.code == 1
    assert f"dr-payment-global-{ENV}" in result.err and "reports no writer endpoint" in result.err
    assert "aws rds describe-global-clusters" in result.err  # what to look at
    assert h.sam.commands == []  # no regional stack on a regional endpoint
    assert stack("dns") not in [c.params.get("StackName") for c in h.recorder.calls]
    name = f"/dr-payment/{ENV}/aurora/writer-endpoint"
    value = h.client("ssm", PRIMARY).get_parameter(Name=name)["Parameter"]["Value"]
    assert value == "regional-writer.example"  # untouched, and no SAM stack reads it


def test_sam_stacks_alone_without_a_global_cluster_fail_clearly(h: Harness) -> None:
    result = h.drctl("deploy", "--only", "sam-primary")

    assert result.code == 1
    assert f"dr-payment-global-{ENV}" in result.err and "does not exist" in result.err
    assert "--only aurora-primary aurora-secondary" in result.err
    assert h.sam.commands == []


def test_infra_only_runs_report_a_missing_writer_endpoint_and_go_on(h: Harness) -> None:
    result = h.drctl("deploy", "--only", "network-primary")

    assert result.code == 0, result.err
    assert "note: Aurora global cluster" in result.err and "does not exist" in result.err
    assert executed(h) == [stack("network-primary")]


def _run_engine(h: Harness, version: str) -> None:
    """What `aws rds modify-db-cluster --engine-version` leaves behind (moto: the backend)."""
    from moto.rds.models import rds_backends

    for region in (PRIMARY, SECONDARY):
        for cluster in rds_backends[ACCOUNT][region].clusters.values():
            cluster.engine_version = version


def test_an_engine_version_change_is_refused_until_the_clusters_run_it(h: Harness) -> None:
    from tests.integration.drctl.environment import _aurora

    assert h.drctl("deploy", *BUDGET).code == 0
    _aurora(h)  # the two member clusters (moto's CloudFormation does not make them)
    _run_engine(h, "8.0.mysql_aurora.3.10.0")
    h.recorder.clear()

    newer = ("--param", "aurora-primary.EngineVersion=8.0.mysql_aurora.3.10.1")
    refused = h.drctl("deploy", *newer)

    assert refused.code == 4
    assert "dr-payment-secondary-it (us-west-2, secondary) runs 8.0.mysql_aurora.3.10.0" in (
        refused.err
    )
    assert "secondary cluster first" in refused.err and "Upgrading Aurora" in refused.err
    assert stack("aurora-primary") not in executed(h)
    assert parameters(h, "aurora-primary", PRIMARY)["EngineVersion"] == "8.0.mysql_aurora.3.10.0"

    _run_engine(h, "8.0.mysql_aurora.3.10.1")  # upgraded explicitly, secondary then primary
    recorded = h.drctl("deploy", *newer)

    assert recorded.code == 0, recorded.err
    assert parameters(h, "aurora-primary", PRIMARY)["EngineVersion"] == "8.0.mysql_aurora.3.10.1"
