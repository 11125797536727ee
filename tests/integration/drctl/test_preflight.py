"""drctl preflight against moto: conflicts in either region, failed stacks, SAM build, params."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, SECONDARY

BUDGET = ("--param", "budget.BudgetEmail=ops@example.com")


def test_a_clean_account_passes(harness: Harness) -> None:
    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 0, result.out + result.err
    assert "no problems" in result.out
    assert [c for c in harness.recorder.calls if c.is_write] == []


def test_a_conflicting_table_in_the_secondary_region_is_reported(harness: Harness) -> None:
    harness.client("dynamodb", SECONDARY).create_table(
        TableName=f"dr-payment-sessions-{ENV}",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "payment_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "payment_id", "KeyType": "HASH"}],
    )

    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 3
    problem = next(line for line in result.out.splitlines() if "PROBLEM" in line)
    assert f"[{SECONDARY}]" in problem and f"dr-payment-sessions-{ENV}" in problem
    assert "fix:" in result.out


def test_every_problem_is_listed_with_its_fix(harness: Harness) -> None:
    harness.client("s3").create_bucket(Bucket=f"dr-payment-docs-primary-{ENV}-{ACCOUNT}")
    harness.client("rds", PRIMARY).create_global_cluster(
        GlobalClusterIdentifier=f"dr-payment-global-{ENV}", Engine="aurora-mysql"
    )
    cfn = harness.client("cloudformation", PRIMARY)
    cfn.create_stack(
        StackName=f"dr-payment-dns-{ENV}",
        TemplateBody="Resources:\n  Q:\n    Type: AWS::SQS::Queue\n",
    )
    from moto.cloudformation.models import cloudformation_backends

    for planted in cloudformation_backends[ACCOUNT][PRIMARY].stacks.values():
        planted.status = "ROLLBACK_COMPLETE"
    source = harness.root / "src" / "handler.py"
    later = (harness.root / ".aws-sam" / "build" / "template.yaml").stat().st_mtime + 60
    os.utime(source, (later, later))

    result = harness.drctl("preflight")  # and no BudgetEmail

    assert result.code == 3
    problems = [line for line in result.out.splitlines() if "PROBLEM" in line]
    assert len(problems) == 5, result.out
    text = "\n".join(problems)
    assert f"bucket dr-payment-docs-primary-{ENV}-{ACCOUNT}" in text
    assert f"global cluster dr-payment-global-{ENV}" in text
    assert f"dr-payment-dns-{ENV} is ROLLBACK_COMPLETE" in text
    assert "SAM artifacts" in text
    assert "needs BudgetEmail" in text
    assert "--param budget.BudgetEmail=VALUE" in result.out


def test_what_our_own_stacks_own_is_no_conflict(harness: Harness) -> None:
    assert harness.drctl("deploy", *BUDGET).code == 0

    result = harness.drctl("preflight")  # BudgetEmail is now on the deployed stack

    assert result.code == 0, result.out


def test_unreachable_aws_is_a_problem_not_a_crash(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = harness.drctl("preflight")

    assert result.code == 3
    assert "not reachable" in result.out and PRIMARY in result.out


CONFIG_TEMPLATE = """\
Parameters:
  Environment: {Type: String, AllowedValues: [dev, staging, prod, it]}
  AlertEmail:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /dr-payment/dev/config/budget-alert-email
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


def _add_config_stack(harness: Harness) -> None:
    import yaml

    (harness.root / "infra-global" / "config.yaml").write_text(CONFIG_TEMPLATE)
    document = yaml.safe_load(harness.plan.read_text())
    document["stacks"].append(
        {
            "id": "config",
            "name": "dr-payment-config-{env}",
            "template": "config.yaml",
            "region": "primary",
            "parameters": {
                "Environment": "{env}",
                "AlertEmail": "/dr-payment/{env}/config/budget-alert-email",
            },
        }
    )
    harness.plan.write_text(yaml.safe_dump(document, sort_keys=False))


def test_operator_ssm_inputs_and_disallowed_values_are_reported(harness: Harness) -> None:
    _add_config_stack(harness)

    result = harness.drctl("preflight", *BUDGET, env="qa-1")

    assert result.code == 3
    assert "SSM parameter /dr-payment/qa-1/config/budget-alert-email" in result.out
    assert "aws ssm put-parameter --region us-east-1" in result.out
    assert "Environment='qa-1' is not one of ['dev', 'staging', 'prod', 'it']" in result.out
    # SSM paths the plan's own params stacks publish are not reported
    assert "/network/lambda-security-group-id" not in result.out


def test_an_existing_operator_input_satisfies_preflight(harness: Harness) -> None:
    _add_config_stack(harness)
    harness.client("ssm").put_parameter(
        Name=f"/dr-payment/{ENV}/config/budget-alert-email", Value="a@example.com", Type="String"
    )
    result = harness.drctl("preflight", *BUDGET)
    assert result.code == 0, result.out


# ------------------------------------------------------------------ first deploy (issue 10)


def problems(result: Any) -> list[str]:
    """Each PROBLEM line joined with its fix line."""
    lines = result.out.splitlines()
    return [f"{line}\n{lines[i + 1]}" for i, line in enumerate(lines) if "PROBLEM" in line]


def test_a_clean_account_gets_the_new_checks_too(harness: Harness) -> None:
    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 0, result.out
    asked = {(c.operation, c.region) for c in harness.recorder.calls}
    for region in (PRIMARY, SECONDARY):
        assert ("GetAccountSettings", region) in asked
        assert ("DescribeAvailabilityZones", region) in asked
        assert ("DescribeVpcEndpointServices", region) in asked


def test_a_new_accounts_concurrency_quota_is_reported_with_the_request_to_make(
    harness: Harness,
) -> None:
    harness.lambda_quota[PRIMARY] = 50  # what a new account often gets

    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 3
    (problem,) = problems(result)
    assert f"[{PRIMARY}]" in problem
    assert "reserves 30 concurrent executions (PaymentProcessorFunction 25, HealthFunction 5)" in (
        problem
    )
    assert "quota here is 50 with 50 unreserved" in problem
    # what to do: the Service Quotas request, or smaller reservations for dev
    assert "request a quota of at least 130" in problem
    assert (
        f"aws service-quotas request-service-quota-increase --region {PRIMARY} "
        "--service-code lambda --quota-code L-B99A9384 --desired-value 1000"
    ) in problem
    assert "--param sam-primary.ProcessorReservedConcurrency=N" in problem
    assert "--param sam-primary.HealthReservedConcurrency=N" in problem


def test_other_functions_reservations_count_against_the_quota(harness: Harness) -> None:
    lam = harness.client("lambda", SECONDARY)
    role = harness.client("iam").create_role(RoleName="other", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    lam.create_function(
        FunctionName="someone-elses",
        Runtime="python3.12",
        Role=role,
        Handler="h.h",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    lam.put_function_concurrency(FunctionName="someone-elses", ReservedConcurrentExecutions=880)

    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 3
    (problem,) = problems(result)
    assert f"[{SECONDARY}]" in problem and "quota here is 1000 with 120 unreserved" in problem
    assert "at least 1010" in problem  # 880 theirs + 30 ours + Lambda's 100


def test_a_redeploy_does_not_count_our_own_reservations_twice(harness: Harness) -> None:
    lam = harness.client("lambda", PRIMARY)
    role = harness.client("iam").create_role(RoleName="ours", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    for name, amount in (("processor", 25), ("health", 5)):
        function = f"dr-payment-{name}-primary-{ENV}"
        lam.create_function(
            FunctionName=function,
            Runtime="python3.12",
            Role=role,
            Handler="h.h",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=amount)
    harness.lambda_quota[PRIMARY] = 130  # 30 held by them, 100 left: exactly enough

    assert harness.drctl("preflight", *BUDGET).code == 0


def test_lower_reservations_for_dev_satisfy_a_small_quota(harness: Harness) -> None:
    harness.lambda_quota[PRIMARY] = 102

    result = harness.drctl(
        "preflight",
        *BUDGET,
        "--param",
        "sam-primary.ProcessorReservedConcurrency=1",
        "--param",
        "sam-primary.HealthReservedConcurrency=1",
    )

    assert result.code == 0, result.out


def test_an_az_id_that_is_no_zone_of_the_region_is_reported(harness: Harness) -> None:
    result = harness.drctl(
        "preflight",
        *BUDGET,
        "--param",
        "network-primary.AvailabilityZoneIds=use1-az1,use1-az2,usw2-az1",
    )

    assert result.code == 3
    (problem,) = problems(result)
    assert "AvailabilityZoneIds usw2-az1: no available zone of us-east-1 has that ID" in problem
    assert "use1-az3" in problem  # the region's zones are listed to choose from
    assert "--param network-primary.AvailabilityZoneIds=" in problem


def _not_offered_in(zone_name: str, *services: str) -> Any:
    """DescribeVpcEndpointServices as AWS answers for a service absent from one zone."""

    def hook(client: Any, service: str, region: str) -> None:
        if service != "ec2":
            return

        def strip(parsed: dict[str, Any], **_: Any) -> None:
            for detail in parsed.get("ServiceDetails", []):
                if detail["ServiceName"].rsplit(".", 1)[1] in services:
                    detail["AvailabilityZones"] = [
                        z for z in detail["AvailabilityZones"] if z != zone_name
                    ]

        client.meta.events.register("after-call.ec2.DescribeVpcEndpointServices", strip)

    return hook


def test_an_endpoint_service_or_lambda_missing_from_a_chosen_zone_is_reported(
    harness: Harness,
) -> None:
    # in moto's (and a sample account's) mapping use1-az4 is us-east-1d
    names = harness.client("ec2").describe_availability_zones()["AvailabilityZones"]
    zone_name = next(z["ZoneName"] for z in names if z["ZoneId"] == "use1-az4")
    harness.add_hook(_not_offered_in(zone_name, "secretsmanager", "lambda"))

    result = harness.drctl("preflight", *BUDGET)

    assert result.code == 3
    found = problems(result)
    assert len(found) == 2, result.out
    text = "\n".join(found)
    service = f"com.amazonaws.{PRIMARY}.secretsmanager"
    zone = f"use1-az4 ({zone_name} in this account)"
    assert f"interface endpoint service {service} is not offered in {zone}" in text
    assert f"Lambda is not offered in {zone}" in text
    assert "sqs" not in text  # offered everywhere
    assert "--param network-primary.AvailabilityZoneIds=" in text


def test_a_half_done_aurora_upgrade_is_reported(harness: Harness) -> None:
    from moto.rds.models import rds_backends

    from tests.integration.drctl.environment import _aurora

    assert harness.drctl("deploy", *BUDGET).code == 0
    _aurora(harness)
    clusters = {
        region: next(iter(rds_backends[ACCOUNT][region].clusters.values()))
        for region in (PRIMARY, SECONDARY)
    }
    clusters[PRIMARY].engine_version = "8.0.mysql_aurora.3.10.0"
    clusters[SECONDARY].engine_version = "8.0.mysql_aurora.3.10.1"  # secondary done, primary not

    half = harness.drctl("preflight")

    assert half.code == 3
    assert "run different engine versions" in half.out and "secondary first" in half.out

    clusters[PRIMARY].engine_version = "8.0.mysql_aurora.3.10.1"  # done, but not recorded
    unrecorded = harness.drctl("preflight")

    assert unrecorded.code == 3
    assert f"dr-payment-aurora-primary-{ENV} records EngineVersion 8.0.mysql_aurora.3.10.0" in (
        unrecorded.out
    )
    assert "--param aurora-primary.EngineVersion=8.0.mysql_aurora.3.10.1" in unrecorded.out
