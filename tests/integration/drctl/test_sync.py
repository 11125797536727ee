"""`sam sync` cannot point `live` or reserved concurrency anywhere `drctl deploy` would not:
samconfig makes it code-only, and `drctl sync` refuses staging/prod and undeployed stacks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.environment import SAM_STACK
from tests.integration.drctl.project import ENV, PRIMARY, SECONDARY

ROOT = Path(__file__).resolve().parents[3]


def test_samconfig_sync_is_code_only_and_for_the_dev_stacks() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    envs = [name for name, sections in config.items() if isinstance(sections, dict)]
    synced = [name for name in envs if "sync" in config[name]]
    assert sorted(synced) == ["primary", "secondary"]
    for name in synced:
        sync = config[name]["sync"]["parameters"]
        assert sync["code"] is True  # no infrastructure sync: template and parameters untouched
        assert sync["dependency_layer"] is False  # no SAM-made layer on a stack drctl deployed
        # a parameter list would only serve an infrastructure sync, outside drctl's
        # DeployRevision and quota checks
        assert not {"parameter_overrides", "capabilities"} & set(sync)
        stack = config[name]["global"]["parameters"]["stack_name"]
        assert stack == f"dr-payment-{name}-dev", "sync may only name the dev stacks"


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_sync_is_refused_for_staging_and_prod_before_any_aws_call(
    harness: Harness, env: str
) -> None:
    result = harness.drctl("sync", env=env)

    assert result.code == 4
    assert "sam sync is for a dev stack" in result.err and f"drctl deploy --env {env}" in result.err
    assert harness.recorder.calls == [] and harness.sam.commands == []


def test_sync_needs_a_stack_drctl_deployed(harness: Harness) -> None:
    result = harness.drctl("sync")

    assert result.code == 1
    assert f"dr-payment-primary-{ENV} ({PRIMARY}) does not exist" in result.err
    assert harness.sam.commands == []


def test_sync_runs_sam_sync_code_only_on_that_stack(harness: Harness) -> None:
    harness.client("cloudformation", SECONDARY).create_stack(
        StackName=f"dr-payment-secondary-{ENV}", TemplateBody=SAM_STACK % "parked-secondary"
    )

    result = harness.drctl("sync", "--role", "secondary")

    assert result.code == 0, result.err
    (argv,) = harness.sam.commands
    assert argv[:2] == ["sam", "sync"]
    assert {"--code", "--watch", "--no-dependency-layer"} <= set(argv)
    assert argv[argv.index("--stack-name") + 1] == f"dr-payment-secondary-{ENV}"
    assert argv[argv.index("--region") + 1] == SECONDARY
    assert argv[argv.index("--config-env") + 1] == "secondary"
    assert "--parameter-overrides" not in argv  # nothing that could reach the template
