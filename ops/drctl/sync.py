"""`drctl sync`: `sam sync --code --watch` against a dev regional stack, and never another.

`sam sync` bypasses CloudFormation: its code sync calls UpdateFunctionCode, publishes a version
and moves the `live` alias to it, with the local code and whatever configuration the stack has.
An infrastructure sync (sam sync without --code) would also redeploy the template with
samconfig's parameters, outside drctl's DeployRevision, writer-endpoint and quota checks. So:
code only (no parameter, reserved concurrency, alias setting or resource can change), only on a
stack drctl already deployed, and never for staging or prod, which change through `drctl deploy`
(or the CI pipeline) only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ops.drctl import sam
from ops.drctl.cfn import UPDATABLE_STATES
from ops.drctl.context import Context
from ops.drctl.errors import DrctlError, Refused

PROTECTED_ENVS = frozenset({"staging", "prod"})


@dataclass(frozen=True)
class SyncOptions:
    role: str = "primary"
    watch: bool = True


def sync_command(
    *, root_config: str, role: str, stack: str, region: str, watch: bool, profile: str | None
) -> list[str]:
    argv = [
        "sam",
        "sync",
        "--config-file",
        root_config,
        "--config-env",
        role,
        "--code",  # code only: the template, its parameters and the alias settings stay drctl's
        "--no-dependency-layer",  # the stack drctl deployed has no SAM-made dependency layer
        "--stack-name",
        stack,
        "--region",
        region,
        "--watch" if watch else "--no-watch",
    ]
    if profile:
        argv += ["--profile", profile]
    return argv


def run(ctx: Context, options: SyncOptions) -> int:
    if ctx.env in PROTECTED_ENVS:
        raise Refused(
            f"sam sync is for a dev stack: {ctx.env} changes only through `drctl deploy --env "
            f"{ctx.env}` (or the CI pipeline), which publishes a version from a reviewed build "
            "with its DeployRevision"
        )
    plan = ctx.plan()
    spec = next((s for s in plan.stacks if s.is_sam and s.role == options.role), None)
    if spec is None:
        raise DrctlError(f"the plan has no regional stack for role {options.role}")
    state = ctx.cfn(spec.region).describe(spec.name)
    if state is None or state.status not in UPDATABLE_STATES:
        now = "does not exist" if state is None else f"is {state.status}"
        raise DrctlError(
            f"{spec.name} ({spec.region}) {now}: deploy it first with `drctl deploy --env "
            f"{ctx.env}` (sam sync --code updates code only, on a stack that exists)"
        )
    argv = sync_command(
        root_config=str(plan.root / "samconfig.toml"),
        role=spec.role,
        stack=spec.name,
        region=spec.region,
        watch=options.watch,
        profile=ctx.aws.profile,
    )
    ctx.console.progress(f"$ {shlex.join(argv)}")
    code = ctx.runner(argv, plan.root)
    if code != 0:
        raise DrctlError(f"sam sync of {spec.name} exited {code}")
    ctx.console.result(
        f"sync --env {ctx.env}: {spec.name} code synced; `live` points at a version published "
        f"by sam sync until the next `drctl deploy` ({sam.REVISION} moves it back under "
        "CloudFormation)"
    )
    return 0
