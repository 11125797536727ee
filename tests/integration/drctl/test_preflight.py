"""drctl preflight against moto: conflicts in either region, failed stacks, SAM build, params."""

from __future__ import annotations

import os

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
