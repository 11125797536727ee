"""The local sandbox: AWS APIs from a moto server (us-east-1 and us-west-2), the Aurora ledger from
a MariaDB server, both on loopback, both detached so they outlive this command.

    python -m ops.sandbox up                 start and provision (a no-op while one runs)
    python -m ops.sandbox down               stop what `up` started, by PID
    python -m ops.sandbox invoke FN EVENT    run FN's handler in-process; its JSON response is
                                             the last line of stdout (logs go to stderr)
    python -m ops.sandbox demo               every events/*.json through the bus and the handler

Files live in $SANDBOX_DIR (default .sandbox/ in the repo root): env.json (SAM --env-vars),
env.secondary.json, env.docker.json, endpoints.json, state.json, logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ops.sandbox import demo, functions, invoke, lifecycle
from ops.sandbox.state import Paths, sandbox_dir

EXIT_USAGE = 2


def _say(message: str) -> None:
    print(message, flush=True)


def _fail(message: str, code: int = 1) -> int:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)
    return code


def _invoke(paths: Paths, logical_id: str, event_file: str, role: str) -> int:
    try:
        run = invoke.runner(paths, logical_id, role)
    except functions.UnknownFunction as exc:
        return _fail(str(exc), EXIT_USAGE)
    except invoke.SandboxNotRunning as exc:
        return _fail(str(exc))
    try:
        event = json.loads(Path(event_file).read_text())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read event {event_file}: {exc}", EXIT_USAGE)
    try:
        response = run(event, output=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - reported like Lambda reports an unhandled error
        sys.stdout.write(json.dumps(invoke.error_response(exc)) + "\n")
        return 1
    sys.stdout.write(json.dumps(response) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start moto + MariaDB and provision both regions")
    commands.add_parser("down", help="stop what `up` started")
    call = commands.add_parser("invoke", help="run a function's handler in-process")
    call.add_argument("function", metavar="FN", help="logical id in template.yaml")
    call.add_argument("event", metavar="EVENT", help="event JSON file")
    call.add_argument(
        "--role",
        choices=["primary", "secondary"],
        default="primary",
        help="run with that region's environment (default primary, us-east-1)",
    )
    show = commands.add_parser("demo", help="send every sample event through the bus")
    show.add_argument(
        "--no-reset",
        action="store_true",
        help="keep the ledger, tables and queues as they are (charges then show DUPLICATE)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = Paths(sandbox_dir())
    try:
        if args.command == "up":
            return lifecycle.up(paths, _say)
        if args.command == "down":
            return lifecycle.down(paths, _say)
        if args.command == "invoke":
            return _invoke(paths, args.function, args.event, args.role)
        return demo.run(paths, _say, reset=not args.no_reset)
    except invoke.SandboxNotRunning as exc:
        return _fail(str(exc))
    except RuntimeError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        return 0


if __name__ == "__main__":
    sys.exit(main())
