"""A configuration change reaches `live` (issue 10): through the real SAM transform of the real
template.yaml, the DeployRevision drctl computes names a new published version when an SSM value
or a parameter changes, and the same version when nothing did.

samtranslator lives in the tools virtualenv (it pins another pydantic than .venv), so the
translation runs there: ops/ci/sam_translate.py, the script the static gates use too."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ops.drctl.sam import deploy_revision

ROOT = Path(__file__).resolve().parents[3]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
CODE = "3f1c0d"  # a build's digest: fixed here, the inputs below are what change
SSM = {
    "/dr-payment/dev/aurora/writer-endpoint": "dr-payment-global-dev.global-a1.global.rds.aws",
    "/dr-payment/dev/network/lambda-subnet-ids": "subnet-0a,subnet-0b,subnet-0c",
}
PARAMS = {"Environment": "dev", "RegionRole": "primary", "LogLevel": "INFO"}


def _versions(parameter_sets: list[dict[str, str]]) -> list[dict[str, str]]:
    if not TOOLS_PYTHON.exists():
        pytest.skip("the SAM translator lives in .venv-tools: run `make tools` (make test does)")
    done = subprocess.run(
        [
            str(TOOLS_PYTHON),
            str(ROOT / "ops" / "ci" / "sam_translate.py"),
            "versions",
            str(ROOT / "template.yaml"),
            json.dumps(parameter_sets),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
    )
    result: list[dict[str, str]] = json.loads(done.stdout.splitlines()[0])
    return result


def _with_revision(params: dict[str, str], ssm: dict[str, str]) -> dict[str, str]:
    return {**params, "DeployRevision": deploy_revision(CODE, params, ssm)}


def test_a_changed_ssm_value_or_parameter_publishes_a_new_version_an_unchanged_deploy_not() -> None:
    moved_writer = {**SSM, "/dr-payment/dev/aurora/writer-endpoint": "failover-target.example"}
    debug = {**PARAMS, "LogLevel": "DEBUG"}
    base, again, ssm_changed, param_changed = _versions(
        [
            _with_revision(PARAMS, SSM),
            _with_revision(dict(PARAMS), dict(SSM)),
            _with_revision(PARAMS, moved_writer),
            _with_revision(debug, SSM),
        ]
    )
    version = base["PaymentProcessorFunction"]
    assert again["PaymentProcessorFunction"] == version
    assert ssm_changed["PaymentProcessorFunction"] != version
    assert param_changed["PaymentProcessorFunction"] != version
    # the logical id IS the revision: CloudFormation creates a new AWS::Lambda::Version
    revision = deploy_revision(CODE, PARAMS, SSM)
    assert version == f"PaymentProcessorFunctionVersion{revision}"


def test_without_a_revision_sam_would_keep_the_old_version_for_a_parameter_change() -> None:
    """Why DeployRevision exists (aws/serverless-application-model#1640): SAM hashes the
    function's properties before parameters are resolved."""
    before, after = _versions([PARAMS, {**PARAMS, "LogLevel": "DEBUG"}])
    assert before == after
