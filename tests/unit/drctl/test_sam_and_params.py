"""The sam deploy command, SAM build freshness, parameters, template reading."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ops.drctl.cfn import StackState
from ops.drctl.errors import PlanError, UsageError
from ops.drctl.params import ParamOverride, assemble
from ops.drctl.plan import StackSpec
from ops.drctl.sam import (
    build_problem,
    code_digest,
    deploy_command,
    deploy_revision,
    sam_parameters,
)
from ops.drctl.template import load_template, parse_template

SAM_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Environment: {Type: String, Default: dev}
  RegionRole: {Type: String}
  DeployRevision: {Type: String, Default: ""}
  LambdaSubnetIds:
    Type: AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>
    Default: /dr-payment/dev/network/lambda-subnet-ids
  LogLevel: {Type: String, Default: INFO}
Resources: {}
"""
SECONDARY = StackSpec(
    "sam-secondary", "dr-payment-secondary-staging", "secondary", "us-west-2", "sam", None, 14
)


def project(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text(SAM_TEMPLATE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    return tmp_path


def test_sam_deploy_command_for_another_env(tmp_path: Path) -> None:
    root = project(tmp_path)
    values = sam_parameters(SECONDARY, root=root, env="staging")

    argv = deploy_command(SECONDARY, root=root, parameters=values, profile="ops")

    assert argv[:2] == ["sam", "deploy"]
    pairs = dict(zip(argv[2::1], argv[3::1], strict=False))
    assert pairs["--config-env"] == "secondary"
    assert pairs["--config-file"] == str(root / "samconfig.toml")
    assert pairs["--template-file"] == str(root / ".aws-sam/build/template.yaml")
    assert pairs["--stack-name"] == "dr-payment-secondary-staging"
    assert pairs["--region"] == "us-west-2"
    assert pairs["--profile"] == "ops"
    overrides = argv[argv.index("--parameter-overrides") + 1 : argv.index("--tags")]
    assert overrides == [
        "Environment=staging",
        "RegionRole=secondary",
        "LambdaSubnetIds=/dr-payment/staging/network/lambda-subnet-ids",
    ]
    assert "environment=staging" in argv
    assert argv[-2:] == ["--profile", "ops"]
    assert {"--no-confirm-changeset", "--no-fail-on-empty-changeset"} <= set(argv)


def test_dev_keeps_the_template_defaults(tmp_path: Path) -> None:
    root = project(tmp_path)
    values = sam_parameters(SECONDARY, root=root, env="dev")
    argv = deploy_command(SECONDARY, root=root, parameters=values, profile=None)
    overrides = argv[argv.index("--parameter-overrides") + 1 : argv.index("--tags")]
    assert overrides == ["Environment=dev", "RegionRole=secondary"]
    assert "--profile" not in argv


def test_plan_values_then_params_win_and_odd_values_survive_sams_reparse(tmp_path: Path) -> None:
    root = project(tmp_path)
    values = sam_parameters(
        SECONDARY,
        root=root,
        env="dev",
        given={"LogLevel": "WARN"},
        overrides=(
            ParamOverride("sam-secondary", "LogLevel", "DEBUG"),
            ParamOverride("sam-primary", "LogLevel", "ERROR"),  # another stack's
        ),
    )
    assert values["LogLevel"] == "DEBUG"
    argv = deploy_command(
        SECONDARY, root=root, parameters={**values, "Note": 'a "b" c', "Empty": ""}, profile=None
    )
    assert 'Note="a \\"b\\" c"' in argv and 'Empty=""' in argv
    with pytest.raises(UsageError, match="DeployRevision is computed"):
        sam_parameters(
            SECONDARY,
            root=root,
            env="dev",
            overrides=(ParamOverride(None, "DeployRevision", "x"),),
        )


def test_the_revision_follows_code_parameters_and_ssm_values(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "Fn").mkdir(parents=True)
    (build / "Fn" / "app.py").write_text("x = 1\n")
    (build / "Fn" / "__pycache__").mkdir()
    (build / "Fn" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"\x00")
    values = {"Environment": "dev", "RegionRole": "primary", "LogLevel": "INFO"}
    ssm = {"/dr-payment/dev/aurora/writer-endpoint": "db.global-abc.global.rds.amazonaws.com"}
    base = deploy_revision(code_digest(build), values, ssm)

    assert re.fullmatch(r"[0-9a-f]{10}", base)  # template.yaml allows ^[A-Za-z0-9]{0,10}$
    assert deploy_revision(code_digest(build), dict(values), dict(ssm)) == base
    (build / "Fn" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"\x01")
    assert deploy_revision(code_digest(build), values, ssm) == base  # caches are not code
    moved = {**ssm, "/dr-payment/dev/aurora/writer-endpoint": "db2.example"}
    assert deploy_revision(code_digest(build), values, moved) != base
    assert deploy_revision(code_digest(build), {**values, "LogLevel": "DEBUG"}, ssm) != base
    assert deploy_revision(code_digest(build), {**values, "DeployRevision": "old"}, ssm) == base
    (build / "Fn" / "app.py").write_text("x = 2\n")
    assert deploy_revision(code_digest(build), values, ssm) != base


def test_build_freshness(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert "missing" in (build_problem(root) or "")
    built = root / ".aws-sam" / "build" / "template.yaml"
    built.parent.mkdir(parents=True)
    built.write_text(SAM_TEMPLATE)
    source_time = (root / "src" / "app.py").stat().st_mtime
    os.utime(built, (source_time + 5, source_time + 5))
    assert build_problem(root) is None
    os.utime(root / "src" / "app.py", (source_time + 10, source_time + 10))
    assert "older" in (build_problem(root) or "")


def test_param_override_parsing() -> None:
    assert ParamOverride.parse("budget.BudgetEmail=a=b@x") == ParamOverride(
        "budget", "BudgetEmail", "a=b@x"
    )
    assert ParamOverride.parse("LogLevel=") == ParamOverride(None, "LogLevel", "")
    with pytest.raises(UsageError):
        ParamOverride.parse("LogLevel")


def test_assemble_reuses_deployed_values_and_reports_the_missing(tmp_path: Path) -> None:
    (tmp_path / "budget.yaml").write_text(
        "Parameters:\n  Email: {Type: String}\n  Zone: {Type: String}\n"
        "  Limit: {Type: Number, Default: 100}\nResources: {}\n"
    )
    template = load_template(tmp_path / "budget.yaml")
    spec = StackSpec("budget", "b", "primary", "us-east-1", "cloudformation", "budget.yaml", 1)
    deployed = StackState("b", "id", "CREATE_COMPLETE", parameters={"Email": "a@x", "Zone": "Z1"})

    fresh = assemble(spec, template, {}, (ParamOverride(None, "Zone", "Z2"),), None)
    assert (fresh.values, fresh.missing) == ({"Zone": "Z2"}, ("Email",))

    again = assemble(spec, template, {}, (), deployed)
    assert again.reuse == ("Email", "Zone") and again.missing == ()
    assert {"ParameterKey": "Email", "UsePreviousValue": True} in again.as_api()

    other_stack = ParamOverride("dns", "Zone", "Z3")
    assert "Zone" not in assemble(spec, template, {}, (other_stack,), None).values
    with pytest.raises(PlanError, match="Nope"):
        assemble(spec, template, {"Nope": "1"}, (), None)


def test_templates_with_short_form_intrinsics_parse() -> None:
    document = parse_template(
        "Outputs:\n  A: {Value: !Ref Vpc}\n  B: {Value: !GetAtt Cluster.Endpoint.Address}\n"
        "  C: {Value: !Sub 'x-${AWS::Region}'}\n  D: {Value: !Join [',', [a, b]]}\n"
    )
    outputs = document["Outputs"]
    assert outputs["A"]["Value"] == {"Ref": "Vpc"}
    assert outputs["B"]["Value"] == {"Fn::GetAtt": ["Cluster", "Endpoint.Address"]}
    assert outputs["C"]["Value"] == {"Fn::Sub": "x-${AWS::Region}"}
    assert outputs["D"]["Value"] == {"Fn::Join": [",", ["a", "b"]]}
