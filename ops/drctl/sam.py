"""The regional SAM stacks: `sam deploy` through an injectable runner, and build freshness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ops.drctl.errors import DrctlError
from ops.drctl.plan import StackSpec
from ops.drctl.template import load_template

CommandRunner = Callable[[Sequence[str], Path], int]

_SSM_TYPE = "AWS::SSM::Parameter::Value"
_DEV_PREFIX = "/dr-payment/dev/"


def run_command(argv: Sequence[str], cwd: Path) -> int:
    """Real runner: finds `sam` (the tools venv first); its output goes to stderr, keeping
    drctl's stdout clean."""
    command = list(argv)
    if command and command[0] == "sam":
        command[0] = find_sam(cwd)
    return subprocess.run(command, cwd=cwd, stdout=sys.stderr, check=False).returncode


def find_sam(root: Path) -> str:
    local = root / ".venv-tools" / "bin" / "sam"
    if local.exists():
        return str(local)
    found = shutil.which("sam")
    if found is None:
        raise DrctlError("SAM CLI not found: run `make tools` (it installs .venv-tools/bin/sam)")
    return found


def built_template(root: Path) -> Path:
    return root / ".aws-sam" / "build" / "template.yaml"


def parameter_overrides(root: Path, env: str, role: str) -> list[str]:
    """Environment, plus what template.yaml declares of: RegionRole, DeployRevision (empty:
    SAM's own version hash) and, outside dev, every SSM-typed parameter moved to this env.

    A command-line --parameter-overrides REPLACES samconfig's list and SAM keeps a deployed
    stack's previous value for anything left out, so the list must be complete. The SSM
    parameters' defaults are the dev paths (a default cannot depend on Environment).
    """
    overrides = [f"Environment={env}"]
    source = root / "template.yaml"
    declared = load_template(source).parameters if source.is_file() else {}
    if "RegionRole" in declared:
        overrides.append(f"RegionRole={role}")
    if "DeployRevision" in declared:
        overrides.append('DeployRevision=""')
    for decl in declared.values():
        if env != "dev" and decl.type.startswith(_SSM_TYPE) and _DEV_PREFIX in (decl.default or ""):
            path = (decl.default or "").replace(_DEV_PREFIX, f"/dr-payment/{env}/")
            overrides.append(f"{decl.name}={path}")
    return overrides


def deploy_command(spec: StackSpec, *, env: str, root: Path, profile: str | None) -> list[str]:
    """`sam deploy` for one regional stack, from the BUILT template.

    samconfig.toml sets template_file = template.yaml globally, which would make a bare
    `sam deploy --config-env X` package src/ unbuilt (no dependencies); so the built template
    is named, and the config file given by absolute path (SAM otherwise looks for it next to
    the template). Stack name, region, S3 prefix and tags follow the plan, not samconfig's dev
    values.
    """
    argv = [
        "sam",
        "deploy",
        "--config-file",
        str(root / "samconfig.toml"),
        "--config-env",
        spec.role,
        "--template-file",
        str(built_template(root)),
        "--stack-name",
        spec.name,
        "--region",
        spec.region,
        "--s3-prefix",
        spec.name,
        "--parameter-overrides",
        *parameter_overrides(root, env, spec.role),
        "--tags",
        "project=dr-payment",
        f"environment={env}",
        f"region-role={spec.role}",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ]
    if profile:
        argv += ["--profile", profile]
    return argv


def _newest_mtime(paths: Sequence[Path]) -> float:
    newest = 0.0
    for base in paths:
        candidates = [base] if base.is_file() else base.rglob("*") if base.is_dir() else []
        for path in candidates:
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def build_problem(root: Path) -> str | None:
    """Why `.aws-sam/build` cannot be deployed as is, or None when it is fresh."""
    built = built_template(root)
    if not built.is_file():
        return f"{built.relative_to(root)} is missing: run `make build` (sam build)"
    sources = [root / "template.yaml", root / "src"]
    if _newest_mtime(sources) > built.stat().st_mtime:
        return "the SAM build is older than template.yaml or src/: run `make build` again"
    return None
