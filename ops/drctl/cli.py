"""drctl command line: parsing and exit codes only; the work is in one module per command.

Adding a command (status, switchover, failover, failback, redrive, reconcile, drill): write
its module with `run(ctx, options) -> int`, then add one `Command` to COMMANDS below.
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
