"""The regional SAM stacks: their parameters, the DeployRevision that makes a configuration
change reach the `live` alias, `sam deploy` through an injectable runner, and build freshness."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ops.drctl.errors import DrctlError, PlanError, UsageError
from ops.drctl.params import ParamOverride
from ops.drctl.plan import StackSpec
from ops.drctl.template import ParameterDecl, Template, load_template

CommandRunner = Callable[[Sequence[str], Path], int]

REVISION = "DeployRevision"
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


def sam_template(root: Path) -> Template:
    return load_template(root / "template.yaml")


def sam_parameters(
    spec: StackSpec,
    *,
    root: Path,
    env: str,
    given: Mapping[str, str] | None = None,
    overrides: Sequence[ParamOverride] = (),
) -> dict[str, str]:
    """Every parameter value drctl passes to one regional stack, DeployRevision aside.

    In order, later wins: Environment; RegionRole; outside dev, every SSM-typed parameter moved
    from its /dr-payment/dev/ default to this env (a default cannot depend on Environment); the
    plan's values for this stack (`given`, references already resolved); `--param [ID.]KEY=V`.
    A command-line --parameter-overrides REPLACES samconfig's list and SAM keeps a deployed
    stack's previous value for anything left out, so the list is complete.
    """
    template = sam_template(root)
    declared = template.parameters
    values = {"Environment": env}
    if "RegionRole" in declared:
        values["RegionRole"] = spec.role
    for decl in declared.values():
        if env != "dev" and decl.is_ssm_path and _DEV_PREFIX in (decl.default or ""):
            values[decl.name] = (decl.default or "").replace(_DEV_PREFIX, f"/dr-payment/{env}/")
    values.update(given or {})
    for override in overrides:
        if override.applies_to(spec, template):
            values[override.key] = override.value
    if REVISION in values:
        raise UsageError(f"{spec.id}: {REVISION} is computed by drctl (code + parameters + SSM)")
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        listed = ", ".join(undeclared)
        raise PlanError(f"{spec.id}: parameter(s) {listed} not declared in template.yaml")
    return values


def ssm_paths(declared: Mapping[str, ParameterDecl], values: Mapping[str, str]) -> dict[str, str]:
    """{parameter name: SSM path} of the SSM-typed parameters, as this deploy names them."""
    paths = {}
    for decl in declared.values():
        path = values.get(decl.name, decl.default)
        if decl.is_ssm_path and path:
            paths[decl.name] = path
    return paths


def code_digest(build_dir: Path) -> str:
    """SHA-256 over every built file (path and content, sorted; no mtimes): the same build
    gives the same digest on any machine. Bytecode caches are skipped."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in build_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(build_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def deploy_revision(code: str, values: Mapping[str, str], ssm_values: Mapping[str, str]) -> str:
    """The DeployRevision: 10 hex chars of SHA-256 over the built code's digest, the parameter
    values and the values the SSM-typed parameters resolve to. SAM names the published version
    after it (AutoPublishCodeSha256), so a change to any of them publishes a new version and
    moves `live`; an unchanged deploy keeps the version it has."""
    digest = hashlib.sha256(b"code\0" + code.encode())
    for key, value in sorted(values.items()):
        if key != REVISION:
            digest.update(f"param\0{key}\0{value}\0".encode())
    for path, value in sorted(ssm_values.items()):
        digest.update(f"ssm\0{path}\0{value}\0".encode())
    return digest.hexdigest()[:10]


def _quoted(value: str) -> str:
    """SAM CLI joins the overrides and splits them again on spaces: quote what would split."""
    if value and not any(ch.isspace() or ch in "\"'" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def deploy_command(
    spec: StackSpec, *, root: Path, parameters: Mapping[str, str], profile: str | None
) -> list[str]:
    """`sam deploy` for one regional stack, from the BUILT template.

    The built template is named (a bare `sam deploy --config-env X` with a template_file would
    package src/ unbuilt, without dependencies), and the config file given by absolute path (SAM
    otherwise looks for it next to the template). Stack name, region, S3 prefix, tags and every
    parameter follow the plan, not samconfig's dev values.
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
        *(f"{key}={_quoted(value)}" for key, value in parameters.items()),
        "--tags",
        "project=dr-payment",
        f"environment={parameters.get('Environment', '')}",
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
