"""The local sandbox: AWS APIs from a moto server (us-east-1 and us-west-2), the Aurora ledger from
a MariaDB server, both on loopback, both detached so they outlive this command.

    python -m ops.sandbox up                 start and provision (a no-op while one runs)
    python -m ops.sandbox down               stop what `up` started, by PID
    python -m ops.sandbox invoke FN EVENT    run FN's handler in-process; its JSON response is
                                             the last line of stdout (logs go to stderr)
    python -m ops.sandbox demo               every events/*.json through the bus and the handler
    python -m ops.sandbox replication ...    the us-west-2 replica: status, delay N, hold,
                                             release, break; kill/fence/promote/rebuild REGION
    python -m ops.sandbox drill [--seed N]   failover, failback and switchover under a stream
                                             of payments, with the real drctl (make drill)
    python -m ops.sandbox drill-loop         seeded drills one after another until one fails

Files live in $SANDBOX_DIR (default .sandbox/ in the repo root): env.json (SAM --env-vars),
env.secondary.json, env.docker.json, env.docker.secondary.json, endpoints.json, state.json, logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pymysql

from ops.sandbox import demo, functions, invoke, lifecycle
from ops.sandbox.replication import NotAReplica, Topology
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


def _replication(paths: Paths, args: argparse.Namespace) -> int:
    """One drill action on the running sandbox's ledger; prints the replica's status as JSON."""
    action, region = args.action, getattr(args, "region", None)

    def run(ledger: Topology) -> Any:
        if action == "delay":
            ledger.delay(args.seconds)
        elif action in ("hold", "release", "break"):
            {"hold": ledger.hold, "release": ledger.release, "break": ledger.break_}[action]()
        elif action in ("kill", "fence", "promote", "rebuild"):
            getattr(ledger, action)(region)
            _say(f"{action} {region}: writer is now {ledger.writer}")
        statuses = []
        for replica in ledger.replica_regions:
            try:
                statuses.append(ledger.status(replica).as_dict())
            except (NotAReplica, pymysql.err.OperationalError) as exc:  # killed, or not one yet
                statuses.append({"region": replica, "error": str(exc)})
        return {"writer": ledger.writer, "replicas": statuses}

    report = lifecycle.change_ledger(paths, run)
    sys.stdout.write(json.dumps(report) + "\n")
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
    replication = commands.add_parser(
        "replication", help="lag, hold, break or fail over the ledger's replica (drills)"
    )
    actions = replication.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="Seconds_Behind_Master, GTID positions, errors (JSON)")
    delay = actions.add_parser("delay", help="apply changes N seconds late (MASTER_DELAY)")
    delay.add_argument("seconds", type=int)
    actions.add_parser("hold", help="stop applying (changes still arrive)")
    actions.add_parser("release", help="start applying / replicating again")
    actions.add_parser("break", help="stop replication altogether")
    for name, text in (
        ("kill", "SIGKILL the region's server"),
        ("fence", "make a live old writer read-only"),
        ("promote", "the replica stops replicating and takes writes"),
        ("rebuild", "the region's server comes back as a fresh replica of the writer"),
    ):
        actions.add_parser(name, help=text).add_argument("region")
    drill = commands.add_parser(
        "drill", help="failover, failback, switchover under a payment stream (make drill)"
    )
    drill.add_argument("--seed", type=int, help="randomise the plan from this seed")
    drill.add_argument("--payments", type=int, default=1200, help="how many to send (1200)")
    drill.add_argument("--rate", type=float, default=10.0, help="payments per second (10)")
    drill.add_argument(
        "--speedup",
        type=float,
        default=30.0,
        help="Route 53's and Lambda's retry clocks run this much faster (30; 1 = real time)",
    )
    drill.add_argument("--report", type=Path, help="where to write the JSON report")
    drill.add_argument(
        "--short", action="store_true", help="30 payments at 5/s (the end of `make demo`)"
    )
    loop = commands.add_parser(
        "drill-loop", help="seeded drills in a row, stop at the first failure"
    )
    loop.add_argument("--runs", type=int, default=20)
    loop.add_argument("--first-seed", type=int, default=1)
    loop.add_argument("--payments", type=int, default=300)
    loop.add_argument("--rate", type=float, default=10.0)
    loop.add_argument("--speedup", type=float, default=30.0)
    return parser


def _drill(paths: Paths, args: argparse.Namespace) -> int:
    from ops.sandbox.drill import run

    if args.short:
        args.payments, args.rate = 30, 5.0
    return run.run(
        paths,
        _say,
        seed=args.seed,
        payments=args.payments,
        rate=args.rate,
        speedup=args.speedup,
        report_path=args.report,
    )


def _drill_loop(paths: Paths, args: argparse.Namespace) -> int:
    from ops.sandbox.drill import run

    return run.loop(
        paths,
        _say,
        runs=args.runs,
        first_seed=args.first_seed,
        payments=args.payments,
        rate=args.rate,
        speedup=args.speedup,
    )


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
        if args.command == "replication":
            return _replication(paths, args)
        if args.command == "drill":
            return _drill(paths, args)
        if args.command == "drill-loop":
            return _drill_loop(paths, args)
        return demo.run(paths, _say, reset=not args.no_reset)
    except invoke.SandboxNotRunning as exc:
        return _fail(str(exc))
    except RuntimeError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        return 0


if __name__ == "__main__":
    sys.exit(main())
