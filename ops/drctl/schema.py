"""The ledger's schema from drctl: SchemaMigrationFunction in the active region, invoked
synchronously. The ledger is in private subnets and the operator is not; the function is in the
VPC, reads the master secret (it alone may) and applies the migrations packaged with it, so no
bastion, tunnel or hand step is needed.

`drctl deploy` migrates right after the active region's regional stack (the function is part of
it: the migrations it carries are the ones just deployed); `drctl migrate` does it on demand, and
with `--dry-run` only says what is pending. After a failover the active region is the survivor:
its function migrates the writer there (through the global writer endpoint, or the promoted
cluster's own endpoint after a detach-and-promote, where drctl points it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from ops.drctl import control, functions, names
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused

APPLY, STATUS = "apply", "status"


@dataclass(frozen=True)
class Target:
    role: str
    region: str

    def function(self, env: str) -> str:
        return names.schema_migration_function(self.role, env)


def active_target(ctx: Context) -> Target:
    """The active region's function; refused while no region is active (a fence: a DR procedure
    is running or stopped half-way, and the writer may be about to move)."""
    roles = ctx.region_roles()
    current = control.newest(control.read_all(ctx, roles.values()))
    if current is None:
        raise DrctlError(
            "no region-control item in any region (a fresh environment): `drctl deploy` creates "
            "it before the regional stacks, then migrates the schema"
        )
    if current.fenced:
        raise Refused(
            f"no region is active (the region-control item is fenced, epoch {current.epoch}): "
            "a switchover, failover or failback is running or stopped half-way. Finish it "
            f"(`drctl status --env {ctx.env}`), then run `drctl migrate --env {ctx.env}`"
        )
    role = next((r for r, region in roles.items() if region == current.active_region), None)
    if role is None:
        raise DrctlError(f"the active region {current.active_region} is not in the plan")
    return Target(role, current.active_region)


def invoke(ctx: Context, target: Target, action: str) -> dict[str, Any]:
    """SchemaMigrationFunction's answer ({"ok": true, ...}); DrctlError saying what failed."""
    function = target.function(ctx.env)
    where = f"{function} ({target.region})"
    try:
        result = functions.invoke(ctx, target.region, function, {"action": action}, long_call=True)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise DrctlError(
                f"{where} does not exist: deploy the regional stack "
                f"{names.regional_stack(target.role, ctx.env)} first (`drctl deploy --env "
                f"{ctx.env} --only sam-{target.role}`), which then migrates"
            ) from exc
        if code == "TooManyRequestsException":
            raise DrctlError(
                f"{where} is already running (one migration at a time): wait for it, then run "
                f"`drctl migrate --env {ctx.env}` again"
            ) from exc
        raise
    except ReadTimeoutError as exc:
        raise DrctlError(
            f"no answer from {where} within Lambda's 15 minutes: see its log group "
            f"/aws/lambda/{function}; a migration cut off is stopped on the server and goes on "
            "from the same statement when run again"
        ) from exc
    except BotoCoreError as exc:
        raise DrctlError(f"cannot invoke {where}: {exc}") from exc
    answer = result.payload if isinstance(result.payload, dict) else {}
    if result.error:
        raise DrctlError(
            f"{where} failed ({result.error}: {answer.get('errorMessage', 'no message')}); "
            f"its log group: /aws/lambda/{function}"
        )
    if not answer.get("ok"):
        raise DrctlError(
            f"ledger schema NOT brought up to date by {where}: "
            f"{answer.get('error', f'unexpected answer {result.payload!r}')}"
        )
    return answer


def describe(answer: dict[str, Any]) -> list[str]:
    lines = [f"ledger schema: version {answer.get('version')} (database {answer.get('database')})"]
    if answer.get("action") == APPLY:
        applied = answer.get("applied") or []
        lines.append(f"applied now: {', '.join(applied)}" if applied else "nothing was pending")
        created = "created" if answer.get("app_user_created") else "password and grants ensured"
        lines.append(f"application user {answer.get('app_user')}: {created}")
    else:
        pending = answer.get("pending") or []
        lines.append(f"pending: {', '.join(pending)}" if pending else "nothing pending")
    if answer.get("unknown"):
        lines.append(
            f"applied by a newer release than this one: {', '.join(answer['unknown'])} (do not "
            "roll the code back past it)"
        )
    return lines


def migrate(ctx: Context, target: Target, *, dry_run: bool = False) -> list[str]:
    return describe(invoke(ctx, target, STATUS if dry_run else APPLY))


@dataclass(frozen=True)
class MigrateOptions:
    dry_run: bool = False


def run(ctx: Context, options: MigrateOptions) -> int:
    target = active_target(ctx)
    function = target.function(ctx.env)
    verb = "reading the schema" if options.dry_run else "migrating"
    ctx.console.step(f"{verb} through {function} ({target.region}, the active region)")
    for line in migrate(ctx, target, dry_run=options.dry_run):
        ctx.console.result(line)
    return EXIT_OK
