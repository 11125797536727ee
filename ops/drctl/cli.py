"""drctl command line: parsing and exit codes only; the work is in one module per command.

Adding a command (e.g. drill): write its module with `run(ctx, options) -> int`, then add one
`Command` to COMMANDS below.
Every command gets --env/--profile/--plan; output goes to stdout, progress to stderr.

Exit codes: 0 ok, 1 failure, 2 usage, 3 preflight found problems, 4 refused by a guard.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl.aws import ClientFactory
from ops.drctl.console import Console
from ops.drctl.context import DEFAULT_PLAN, Context
from ops.drctl.errors import EXIT_FAILURE, DrctlError
from ops.drctl.params import ParamOverride
from ops.drctl.sam import CommandRunner, run_command

_ENV = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")  # short enough for every derived name


def env_name(text: str) -> str:
    if not _ENV.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use dev, staging, prod or another name of [a-z0-9-], at most 16 chars"
        )
    return text


def _overrides(args: argparse.Namespace) -> tuple[ParamOverride, ...]:
    return tuple(ParamOverride.parse(text) for text in args.param)


def _add_param_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[ID.]KEY=VALUE",
        help="a template parameter the plan does not set (e.g. budget.BudgetEmail=ops@example.com);"
        " repeatable; without ID it applies to every stack whose template declares KEY",
    )


def _deploy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print each stack: region, order, parameters, new/to update/unchanged; change nothing",
    )
    parser.add_argument("--only", nargs="+", default=[], metavar="ID", help="deploy these ids only")
    _add_param_option(parser)


def _deploy(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import deploy

    options = deploy.DeployOptions(
        dry_run=args.dry_run, only=frozenset(args.only), overrides=_overrides(args)
    )
    return deploy.run(ctx, options)


def _teardown_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-final-snapshot",
        action="store_true",
        help="no final Aurora snapshots nor DynamoDB backups; the retained KMS keys are then"
        " scheduled for deletion (otherwise kept: the snapshots are encrypted with them)",
    )
    parser.add_argument(
        "--i-mean-it-delete-prod", action="store_true", help="required to tear down prod"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _teardown(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import teardown

    options = teardown.TeardownOptions(
        skip_final_snapshot=args.skip_final_snapshot,
        allow_prod=args.i_mean_it_delete_prod,
        yes=args.yes,
    )
    return teardown.run(ctx, options)


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--role", choices=("primary", "secondary"), default="primary", help="which regional stack"
    )
    parser.add_argument(
        "--no-watch", action="store_true", help="sync once and exit (default: --watch)"
    )


def _sync(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import sync

    return sync.run(ctx, sync.SyncOptions(role=args.role, watch=not args.no_watch))


def _preflight(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import preflight

    return preflight.run(ctx, _overrides(args))


def _procedure_arguments(parser: argparse.ArgumentParser, *, to_default: str | None) -> None:
    parser.add_argument(
        "--to",
        default=to_default,
        metavar="ROLE|REGION",
        help="the region to make active (primary, secondary or a region name)"
        + ("" if to_default else "; default: the region the control item does not name"),
    )
    parser.add_argument("--dry-run", action="store_true", help="check and print the steps only")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="write each step's timing and counts as JSON"
    )
    parser.add_argument(
        "--parallel", type=_positive, default=4, help="concurrent replays while redriving"
    )


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("between 1 and 64")
    return value


def _confirm(ctx: Context, args: argparse.Namespace, what: str) -> None:
    if args.yes or args.dry_run:
        return
    from ops.drctl.errors import Refused

    try:
        answer = ctx.ask(f"{what} in environment {ctx.env!r}. Type the environment name: ")
    except EOFError:
        answer = ""
    if answer.strip() != ctx.env:
        raise Refused(f"{args.command} not confirmed: nothing was changed")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _status(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import status

    return status.run(ctx, as_json=args.json)


def _switchover(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import switchover

    _confirm(ctx, args, "Planned switchover of the writing region")
    options = switchover.SwitchOptions(
        to=args.to, dry_run=args.dry_run, report=args.report, parallel=args.parallel
    )
    return switchover.run(ctx, options)


def _failover_arguments(parser: argparse.ArgumentParser) -> None:
    _procedure_arguments(parser, to_default=None)
    parser.add_argument(
        "--reconcile-since",
        default="24h",
        metavar="T",
        help="reconcile from T (RFC 3339, or 90m / 6h / 2d back); default 24h: before the outage",
    )


def _failover(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import failover

    _confirm(ctx, args, "UNPLANNED failover (may lose what had not replicated)")
    options = failover.FailoverOptions(
        to=args.to,
        dry_run=args.dry_run,
        report=args.report,
        parallel=args.parallel,
        reconcile_since=args.reconcile_since,
    )
    return failover.run(ctx, options)


def _failback_arguments(parser: argparse.ArgumentParser) -> None:
    _procedure_arguments(parser, to_default="primary")
    parser.add_argument(
        "--fence-only",
        action="store_true",
        help="only fence the returning region (run it as soon as that region answers again)",
    )


def _failback(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import failback

    if not args.fence_only:
        _confirm(ctx, args, "Failback (rebuild the old primary if needed, then switch back)")
    options = failback.FailbackOptions(
        to=args.to,
        dry_run=args.dry_run,
        fence_only=args.fence_only,
        report=args.report,
        parallel=args.parallel,
    )
    return failback.run(ctx, options)


def _redrive_arguments(parser: argparse.ArgumentParser) -> None:
    from shared.names import Queue

    parser.add_argument(
        "--queue",
        action="append",
        choices=[queue.value for queue in Queue],
        help="which queue (repeatable; default standby)",
    )
    parser.add_argument(
        "--from",
        dest="source_role",
        choices=["primary", "secondary"],
        help="whose queue (default: the active region's), replayed into the active region",
    )
    parser.add_argument("--parallel", type=_positive, default=4, help="concurrent replays")


def _redrive(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import redrive
    from shared.names import Queue

    options = redrive.RedriveOptions(
        queues=tuple(Queue(value) for value in (args.queue or ["standby"])),
        source_role=args.source_role,
        parallel=args.parallel,
    )
    return redrive.run(ctx, options)


def _reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        required=True,
        metavar="T",
        help="payments processed from T: RFC 3339 (2026-11-30T04:00:00Z) or 90m / 6h / 2d back",
    )
    parser.add_argument(
        "--no-fix", dest="fix", action="store_false", help="list the differences only"
    )


def _reconcile(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import reconcile

    return reconcile.run(ctx, reconcile.ReconcileOptions(since=args.since, fix=args.fix))


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="say which migrations are pending; change nothing"
    )


def _migrate(ctx: Context, args: argparse.Namespace) -> int:
    from ops.drctl import schema

    return schema.run(ctx, schema.MigrateOptions(dry_run=args.dry_run))


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[Context, argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command(
        "deploy",
        "deploy infra-global and the regional stacks in plan order (resumable, idempotent)",
        _deploy_arguments,
        _deploy,
    ),
    Command(
        "migrate",
        "apply pending ledger migrations and the app user (the active region's migration function)",
        _migrate_arguments,
        _migrate,
    ),
    Command(
        "teardown",
        "fence, then delete every stack and all data of an environment (idempotent)",
        _teardown_arguments,
        _teardown,
    ),
    Command(
        "sync",
        "sam sync --code --watch on a dev regional stack (refused for staging and prod)",
        _sync_arguments,
        _sync,
    ),
    Command(
        "preflight",
        "find name conflicts, failed stacks, stale SAM builds, missing parameters (exit 3)",
        _add_param_option,
        _preflight,
    ),
    Command(
        "status",
        "active region and epoch, health, lag, queue depths, fence and secrets per region",
        _status_arguments,
        _status,
    ),
    Command(
        "switchover",
        "planned change of the writing region, RPO 0 (both regions up)",
        partial(_procedure_arguments, to_default=None),
        _switchover,
    ),
    Command(
        "failover",
        "the writing region is down: fence it, promote the other, redrive, reconcile",
        _failover_arguments,
        _failover,
    ),
    Command(
        "failback",
        "back to the old primary after a failover: rebuild it as a secondary, switch back",
        _failback_arguments,
        _failback,
    ),
    Command(
        "redrive",
        "replay a queue's events through the active region's processor (counts by outcome)",
        _redrive_arguments,
        _redrive,
    ),
    Command(
        "reconcile",
        "ledger vs sessions table since T, both ways; fixed where provable, the rest listed",
        _reconcile_arguments,
        _reconcile,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env", required=True, type=env_name, help="dev | staging | prod | [a-z0-9-]+"
    )
    common.add_argument("--profile", help="AWS profile (default: the usual AWS_* chain)")
    common.add_argument(
        "--plan", type=Path, default=DEFAULT_PLAN, help=f"deploy plan (default: {DEFAULT_PLAN})"
    )
    parser = argparse.ArgumentParser(
        prog="drctl",
        description="Operator CLI of the multi-region DR payment platform.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 failure, 2 usage, 3 preflight problems, 4 refused by a guard\n"
        "AWS_ENDPOINT_URL points every client at one endpoint (the moto server sandbox)\n"
        "run `drctl COMMAND --help` for a command's options",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.help, description=command.help, parents=[common]
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


@dataclass
class Seams:
    """What tests replace: the AWS client factory, the sam runner, sleep, the prompt, output."""

    factory: ClientFactory | None = None
    runner: CommandRunner = run_command
    sleep: Callable[[float], None] = time.sleep
    ask: Callable[[str], str] = input
    console: Console | None = None


def main(argv: Sequence[str] | None = None, seams: Seams | None = None) -> int:
    seams = seams or Seams()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    console = seams.console or Console()
    factory = seams.factory or ClientFactory(
        profile=args.profile, endpoint_url=os.environ.get("AWS_ENDPOINT_URL")
    )
    ctx = Context(
        env=args.env,
        aws=factory,
        console=console,
        plan_path=args.plan,
        runner=seams.runner,
        sleep=seams.sleep,
        ask=seams.ask,
    )
    try:
        return int(args.handler(ctx, args))
    except DrctlError as exc:
        print(f"drctl {args.command}: {exc}", file=console.err)
        return exc.exit_code
    except (BotoCoreError, ClientError) as exc:
        print(f"drctl {args.command}: AWS error: {exc}", file=console.err)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"drctl {args.command}: interrupted; re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
