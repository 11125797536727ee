"""`up` and `down`: a moto server (both regions) and a MariaDB server, detached so they outlive
the command, provisioned from the templates' own definitions, plus the files that point the
functions, the aws CLI and a MySQL client at them."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from ops import ledger_schema
from ops.sandbox import functions, resources
from ops.sandbox.mariadb import MariaDBServer
from ops.sandbox.state import (
    DUMMY_CREDENTIALS,
    ROOT,
    Paths,
    Process,
    State,
    command_line,
    free_port,
    port_answers,
    terminate,
)

ENV = "dev"  # names match the docs and runbook (dr-payment-sessions-dev, dr-payment-bus-dev)
DB_NAME = "payments"
APP_USER = "payments_app"
LOOPBACK = "127.0.0.1"
DOCKER_DESKTOP_HOST = "host.docker.internal"
MOTO_PROGRAMS = ("moto_server",)
MARIADB_PROGRAMS = ("mariadbd", "mysqld")

Out = Callable[[str], None]


def client(state: State, service: str, region: str) -> Any:
    """A boto3 client on the sandbox's moto server, with dummy credentials."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return session.client(service, endpoint_url=state.aws_endpoint_url)  # type: ignore[call-overload]


def mariadb(state: State, paths: Paths) -> MariaDBServer:
    process = state.process("mariadb")
    return MariaDBServer(paths.mariadb, port=process.port if process else None)


def resolver(state: State, role: str, db_host: str = LOOPBACK) -> functions.Resolver:
    aws = state.aws[role]
    db = state.process("mariadb")
    ssm = {
        "dynamodb/sessions-table-name": f"dr-payment-sessions-{state.env}",
        "dynamodb/region-control-table-name": f"dr-payment-region-control-{state.env}",
        "aurora/writer-endpoint": db_host,
        "aurora/port": str(db.port if db else 3306),
        "aurora/database-name": DB_NAME,
        "aurora/app-secret-arn": aws["app_secret_arn"],
    }
    if "documents_bucket" in aws:  # absent from a sandbox started before HealthFunction existed
        ssm["s3/documents-bucket-name"] = aws["documents_bucket"]
    return functions.Resolver(
        region=state.regions[role],
        parameters={"Environment": state.env, "RegionRole": role},
        ssm=ssm,
        queue_urls=aws["queue_urls_by_name"],
    )


# -- up -----------------------------------------------------------------------------------------


def up(paths: Paths, out: Out) -> int:
    previous = State.load(paths)
    if previous is not None and previous.is_running():
        moto, db = previous.process("moto"), previous.process("mariadb")
        assert moto is not None and db is not None
        out(
            f"sandbox already running (moto :{moto.port}, MariaDB :{db.port}, "
            f"{relative(paths.root)}); nothing to do. `make sandbox-down` stops it."
        )
        return 0
    if previous is not None:
        out("found a stale sandbox (a process is gone or never finished starting): cleaning up")
        for process in previous.processes:
            out(f"  {terminate(process)}")
    _stop_orphan_mariadb(paths, out)
    _remove_created(paths)
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    state = State(env=ENV, regions=dict(resources.REGIONS))
    started = time.monotonic()
    try:
        moto, moto_popen = _launch_moto(paths)
        state.processes.append(moto)
        state.aws_endpoint_url = f"http://{LOOPBACK}:{moto.port}"
        state.save(paths)
        server = MariaDBServer(paths.mariadb).start()  # while moto boots
        assert server.process is not None
        state.processes.append(
            Process("mariadb", server.process.pid, server.port, MARIADB_PROGRAMS)
        )
        state.mariadb_socket = str(server.socket)
        state.save(paths)
        _wait_for_moto(moto, moto_popen, paths)

        password = secrets.token_urlsafe(24)
        _provision_aws(state, password)
        _provision_ledger(server, password)
        _write_files(state, paths, password)
        state.ready = True
        state.save(paths)
    except BaseException:
        for process in reversed(state.processes):
            terminate(process)
        paths.state.unlink(missing_ok=True)
        raise
    out(summary(state, paths, time.monotonic() - started))
    return 0


def _launch_moto(paths: Paths) -> tuple[Process, subprocess.Popen[bytes]]:
    binary = Path(sys.executable).parent / "moto_server"
    program = str(binary) if binary.exists() else shutil.which("moto_server")
    if program is None:
        raise RuntimeError("moto_server not found: run `make venv` (moto[server])")
    port = free_port()
    with open(paths.moto_log, "wb") as log:
        popen = subprocess.Popen(
            [program, "-H", LOOPBACK, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: survives this command and the terminal
            cwd=paths.root,
        )
    return Process("moto", popen.pid, port, MOTO_PROGRAMS), popen


def _wait_for_moto(
    process: Process, popen: subprocess.Popen[bytes], paths: Paths, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"moto_server exited ({popen.returncode}); see {paths.moto_log}")
        if port_answers(process.port):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"moto_server did not answer on :{process.port} in {timeout:.0f}s; see {paths.moto_log}"
    )


def _provision_aws(state: State, password: str) -> None:
    for role, region in state.regions.items():
        dynamodb = client(state, "dynamodb", region)
        sqs = client(state, "sqs", region)
        resources.create_tables(dynamodb, state.env)
        queue_urls = resources.create_queues(sqs, role, state.env)
        inbox_url = resources.create_bus_with_rule(
            client(state, "events", region), sqs, role, state.env
        )
        secret_arn = resources.create_app_secret(
            client(state, "secretsmanager", region), state.env, APP_USER, password
        )
        # Global-table emulation (harness only): moto does not replicate, so the control item
        # naming the primary region as active is written in each region's table.
        resources.seed_active_region(dynamodb, state.env, state.regions["primary"])
        # The documents bucket infra-global/buckets.yaml makes (HealthFunction checks it).
        documents_bucket = f"dr-payment-docs-{role}-{state.env}-{functions.ACCOUNT_ID}"
        s3 = client(state, "s3", region)
        if region == "us-east-1":  # the one region S3 refuses a LocationConstraint for
            s3.create_bucket(Bucket=documents_bucket)
        else:
            s3.create_bucket(
                Bucket=documents_bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        names = resources.queue_names(role, state.env)
        state.aws[role] = {
            "queue_urls": queue_urls,
            "queue_urls_by_name": {names[purpose]: url for purpose, url in queue_urls.items()},
            "inbox_url": inbox_url,
            "app_secret_arn": secret_arn,
            "documents_bucket": documents_bucket,
            "bus": f"dr-payment-bus-{state.env}",
            "rule": f"dr-payment-event-rule-{role}-{state.env}",
        }


def _provision_ledger(server: MariaDBServer, password: str) -> None:
    with server.root() as conn:
        ledger_schema.apply(conn, DB_NAME)
        ledger_schema.ensure_app_user(conn, DB_NAME, APP_USER, password)


def _env_files(state: State, host: str) -> dict[str, dict[str, dict[str, str]]]:
    """SAM --env-vars content per role: every function's resolved environment, sandbox values."""
    files: dict[str, dict[str, dict[str, str]]] = {}
    for role, region in state.regions.items():
        resolve = resolver(state, role, db_host=host)
        per_function = {}
        for logical_id in functions.function_ids():
            env = resolve.environment(functions.function(logical_id))
            if "DB_TLS" in env:
                env["DB_TLS"] = "false"  # MariaDB on loopback has no certificate
            env["AWS_ENDPOINT_URL"] = state.aws_endpoint_url
            env["AWS_REGION"] = region  # in-process invoke; `sam local` takes --region instead
            per_function[logical_id] = {k: v.replace(LOOPBACK, host) for k, v in env.items()}
        files[role] = per_function
    return files


def _write_private(path: Path, data: Any) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _write_files(state: State, paths: Paths, password: str) -> None:
    local = _env_files(state, LOOPBACK)
    _write_private(paths.env_primary, local["primary"])
    _write_private(paths.env_secondary, local["secondary"])
    _write_private(paths.env_docker, _env_files(state, DOCKER_DESKTOP_HOST)["primary"])
    db = state.process("mariadb")
    assert db is not None
    mysql = {"host": LOOPBACK, "port": db.port, "user": APP_USER, "password": password}
    _write_private(
        paths.endpoints,
        {
            "aws_endpoint_url": state.aws_endpoint_url,
            "regions": state.regions,
            # Both regions share one MariaDB for now: the primary/replica pair (real binlog
            # replication, read-only replica) arrives with the failover-drill issue.
            "mysql": {role: {**mysql, "database": DB_NAME} for role in state.regions},
            "mysql_admin_socket": state.mariadb_socket,
        },
    )


def relative(path: Path) -> str:
    """Paths as a user in the repo root would type them."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def summary(state: State, paths: Paths, seconds: float) -> str:
    db = state.process("mariadb")
    assert db is not None
    primary, secondary = state.regions["primary"], state.regions["secondary"]
    env_json, endpoints = relative(paths.env_primary), relative(paths.endpoints)
    env_docker = relative(paths.env_docker)
    creds = " ".join(f"{k}={v}" for k, v in DUMMY_CREDENTIALS.items())
    return "\n".join(
        [
            f"sandbox up in {seconds:.1f}s ({relative(paths.root)}, env {state.env})",
            f"  AWS (moto)  {state.aws_endpoint_url}  regions {primary} (primary active), "
            f"{secondary} (secondary)",
            f"  MariaDB     {LOOPBACK}:{db.port}  database {DB_NAME}, user {APP_USER} "
            f"(password in {endpoints})",
            f"  files       {env_json} (SAM --env-vars), {relative(paths.env_secondary)}, "
            f"{env_docker}, {endpoints}",
            "try:",
            "  make invoke FN=PaymentProcessorFunction EVENT=events/01_charge_usd.json",
            "  make demo",
            f"  {creds} aws --endpoint-url {state.aws_endpoint_url} --region {primary} "
            f"dynamodb scan --table-name dr-payment-sessions-{state.env}",
            f"  mariadb -h {LOOPBACK} -P {db.port} -u {APP_USER} -p {DB_NAME}   "
            f"# password: {endpoints}",
            "  with Docker (after `make build`; Linux, host networking):",
            f"    {creds} sam local invoke PaymentProcessorFunction -e events/01_charge_usd.json "
            f"--env-vars {env_json} --docker-network host",
            f"    (Docker Desktop on macOS/Windows: --env-vars {env_docker} instead, "
            "no --docker-network)",
            "stop it with: make sandbox-down",
        ]
    )


# -- down ---------------------------------------------------------------------------------------


def down(paths: Paths, out: Out) -> int:
    state = State.load(paths)
    if state is None:
        stopped = _stop_orphan_mariadb(paths, out)
        out("sandbox was not running" if not stopped else "sandbox stopped")
        _remove_created(paths)
        return 0
    for process in reversed(state.processes):
        out(terminate(process))
    _remove_created(paths)
    out("sandbox stopped")
    return 0


def _stop_orphan_mariadb(paths: Paths, out: Out) -> bool:
    """A MariaDB left on our data folder without a state file (an `up` killed mid-way)."""
    server = MariaDBServer(paths.mariadb)
    pid = server.pid
    if pid is None:
        return False
    args = command_line(pid)
    if not args or str(paths.mariadb) not in " ".join(args):
        return False
    port = next((a.split("=", 1)[1] for a in args if a.startswith("--port=")), "0")
    out(terminate(Process("mariadb", pid, int(port), MARIADB_PROGRAMS)))
    return True


def _remove_created(paths: Paths) -> None:
    for path in paths.created():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        paths.root.rmdir()  # only when empty: SANDBOX_DIR may hold the user's own files
