"""`up` and `down`: a moto server (both regions) behind the AWS front (ops/sandbox/front: what
moto lacks, and the global writer endpoint) and a MariaDB server per region (us-west-2's a
read-only binlog replica of us-east-1's), detached so they outlive the command, provisioned from
the templates' own definitions, plus the files that point the functions, the aws CLI, a MySQL
client and `sam local invoke` at them."""

from __future__ import annotations

import contextlib
import fcntl
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

from ops.sandbox import bridge, functions, resources
from ops.sandbox.front import rds as front_rds
from ops.sandbox.mariadb import MariaDBServer
from ops.sandbox.replication import Topology
from ops.sandbox.state import (
    DUMMY_CREDENTIALS,
    LOOPBACK,
    ROOT,
    STATE_VERSION,
    Paths,
    Process,
    SandboxNotRunning,
    State,
    command_line,
    free_port,
    port_answers,
    terminate,
)
from shared import names
from shared.adapters import ledger_schema

ENV = "dev"  # names match the docs and runbook (dr-payment-sessions-dev, dr-payment-bus-dev)
DB_NAME = "payments"
APP_USER = "payments_app"
# The name a function in a container uses for this machine: Docker Desktop defines it, and on
# Linux `--add-host host.docker.internal:host-gateway` maps it to the docker0 address.
DOCKER_HOST_NAME = "host.docker.internal"
MOTO_PROGRAMS = ("moto_server", "ops.sandbox.moto_server")
FRONT_PROGRAMS = ("ops.sandbox.front",)
MARIADB_PROGRAMS = ("mariadbd", "mysqld")

Out = Callable[[str], None]


def client(state: State, service: str, region: str, *, endpoint_url: str | None = None) -> Any:
    """A boto3 client on the sandbox's AWS endpoint (the front), with dummy credentials."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url or state.aws_endpoint_url
    )


def moto_client(state: State, service: str, region: str) -> Any:
    """Straight to moto, past the front (provisioning, before the front answers)."""
    return client(state, service, region, endpoint_url=state.moto_url)


def ledger(state: State) -> Topology:
    """The ledger's servers as `up` (or a later promotion) left them."""
    return Topology.attach(state.ledger)


def mariadb(state: State, paths: Paths) -> MariaDBServer:
    """The writer (us-east-1's server until a drill promotes the other)."""
    return ledger(state).primary


def mariadb_process(region: str) -> str:
    return f"mariadb-{region}"


def resolver(state: State, role: str, db_host: str = LOOPBACK) -> functions.Resolver:
    aws = state.aws[role]
    peer = next(r for r in state.regions if r != role)
    region_server = ledger(state).servers[state.regions[role]]
    peer_server = ledger(state).servers[state.regions[peer]]
    # Both regions' functions write through the global writer endpoint (the front's forwarder to
    # whichever server writes now), as in AWS: the passive region's processor parks at the region
    # gate before it writes, and a read-only server answers 1290. `aurora/reader-endpoint` is the
    # region's own server (its health and monitor checks stay in-region), and
    # `aurora/peer-reader-endpoint` the other region's; both as host:port, since the servers share
    # a host here (in AWS every cluster listens on aurora/port and the values are host names).
    ssm = {
        "dynamodb/sessions-table-name": names.sessions_table(state.env),
        "dynamodb/region-control-table-name": names.region_control_table(state.env),
        "aurora/writer-endpoint": db_host,
        "aurora/reader-endpoint": f"{db_host}:{region_server.port}",
        "aurora/peer-reader-endpoint": f"{db_host}:{peer_server.port}",
        "aurora/port": str(state.writer_port),
        "aurora/database-name": DB_NAME,
        # A secret id may be its name or its ARN; the sandbox publishes the name, which survives
        # the front's stand-in for StopReplicationToReplica (the ARN does not).
        "aurora/app-secret-arn": aws["app_secret"],
        "region/peer-region": state.regions[peer],
    }
    if "documents_bucket" in aws:  # absent from a sandbox started before HealthFunction existed
        ssm["s3/documents-bucket-name"] = aws["documents_bucket"]
    if "documents_bucket" in state.aws.get(peer, {}):
        ssm["s3/peer-documents-bucket-name"] = state.aws[peer]["documents_bucket"]
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
        running = {p.name for p in previous.processes}
        servers = ", ".join(
            f"{region} :{server.port} ({ledger(previous).role(region)}"
            f"{'' if mariadb_process(region) in running else ', down'})"
            for region, server in ledger(previous).servers.items()
        )
        out(
            f"sandbox already running (AWS {previous.aws_endpoint_url}, MariaDB {servers}, "
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

    bind = bridge.bind_address()  # before anything starts: a refused SANDBOX_BIND starts nothing
    state = State(env=ENV, regions=dict(resources.REGIONS))
    started = time.monotonic()
    try:
        moto, moto_popen = _launch_moto(paths)
        state.processes.append(moto)
        state.moto_url = f"http://{LOOPBACK}:{moto.port}"
        state.writer_port = free_port()
        state.save(paths)
        # Both servers start together while moto boots; us-west-2's replicates us-east-1's.
        topology = Topology.start(
            paths.mariadb, [state.regions["primary"], state.regions["secondary"]]
        )
        state.ledger = topology.describe()
        state.processes.extend(_server_processes(topology))
        state.save(paths)
        _wait_for_moto(moto, moto_popen, paths)
        # The front boots (imports the functions' code) while AWS and the ledger are provisioned.
        front, front_popen = _launch_front(paths, state)
        state.processes.append(front)
        state.aws_endpoint_url = f"http://{LOOPBACK}:{front.port}"
        state.save(paths)

        password = secrets.token_urlsafe(24)
        _provision_aws(state, password)
        _provision_ledger(topology, password)
        paths.rds.write_text(json.dumps(front_rds.initial_state(state.env, state.regions)))
        _provision_functions(state)
        _wait_for_front(front, front_popen, paths)
        if bind:
            _start_bridge(state, paths, bind, out)
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
    """moto's server with the sandbox's corrections (ops/sandbox/moto_server.py)."""
    port = free_port()
    with open(paths.moto_log, "wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "ops.sandbox.moto_server", "-H", LOOPBACK, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: survives this command and the terminal
            cwd=paths.root,
        )
    return Process("moto", popen.pid, port, MOTO_PROGRAMS), popen


def _launch_front(paths: Paths, state: State) -> tuple[Process, subprocess.Popen[bytes]]:
    port = free_port()
    with open(paths.front_log, "ab") as log:
        popen = subprocess.Popen(
            [
                sys.executable, "-m", "ops.sandbox.front",
                "--dir", str(paths.root), "--port", str(port),
                "--writer-port", str(state.writer_port), "--moto", state.moto_url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )  # fmt: skip
    return Process("front", popen.pid, port, FRONT_PROGRAMS), popen


def _wait_for_front(
    process: Process, popen: subprocess.Popen[bytes], paths: Paths, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"the AWS front exited ({popen.returncode}); see {paths.front_log}")
        if port_answers(process.port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the AWS front did not answer in {timeout:.0f}s; see {paths.front_log}")


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
    """Both regions as infra-global and the regional stacks leave them (straight to moto)."""
    primary, secondary = state.regions["primary"], state.regions["secondary"]
    clusters = _provision_clusters(state, password)
    # The database secrets: primary copy in the primary region, replicated (infra-global/
    # secrets.yaml); `host` is the primary cluster's endpoint, as drctl expects to find it.
    secret_value = {
        "engine": "mysql",
        "host": clusters["primary"],
        "port": 3306,
        "dbClusterIdentifier": names.cluster("primary", state.env),
    }
    for name, user, secret in (
        (names.app_secret(state.env), APP_USER, password),
        (names.master_secret(state.env), "admin", secrets.token_urlsafe(24)),
    ):
        moto_client(state, "secretsmanager", primary).create_secret(
            Name=name,
            SecretString=json.dumps({**secret_value, "username": user, "password": secret}),
            AddReplicaRegions=[{"Region": secondary}],
        )
    for role, region in state.regions.items():
        dynamodb = moto_client(state, "dynamodb", region)
        sqs = moto_client(state, "sqs", region)
        resources.create_tables(dynamodb, state.env)
        queue_urls = resources.create_queues(sqs, role, state.env)
        inbox_url = resources.create_bus_with_rule(
            moto_client(state, "events", region), sqs, role, state.env
        )
        # Global-table emulation (harness only): moto does not replicate, so the control item
        # naming the primary region as active is written in each region's table.
        resources.seed_active_region(dynamodb, state.env, primary)
        # The documents bucket infra-global/buckets.yaml makes (HealthFunction checks it).
        documents_bucket = names.documents_bucket(role, state.env, functions.ACCOUNT_ID)
        s3 = moto_client(state, "s3", region)
        if region == "us-east-1":  # the one region S3 refuses a LocationConstraint for
            s3.create_bucket(Bucket=documents_bucket)
        else:
            s3.create_bucket(
                Bucket=documents_bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        queue_names = resources.queue_names(role, state.env)
        state.aws[role] = {
            "queue_urls": queue_urls,
            "queue_urls_by_name": {
                queue_names[purpose]: url for purpose, url in queue_urls.items()
            },
            "inbox_url": inbox_url,
            "app_secret": names.app_secret(state.env),
            "documents_bucket": documents_bucket,
            "bus": names.event_bus(state.env),
            "rule": names.event_rule(role, state.env),
            "cluster_endpoint": clusters[role],
        }


def _provision_clusters(state: State, password: str) -> dict[str, str]:
    """The regional Aurora clusters in moto (the global cluster is the front's: rds.json);
    returns each role's cluster endpoint."""
    endpoints = {}
    for role, region in state.regions.items():
        made = moto_client(state, "rds", region).create_db_cluster(
            DBClusterIdentifier=names.cluster(role, state.env),
            Engine=front_rds.ENGINE,
            EngineVersion=front_rds.ENGINE_VERSION,
            MasterUsername="admin",
            MasterUserPassword=secrets.token_urlsafe(16),
            DeletionProtection=True,
        )
        endpoints[role] = str(made["DBCluster"]["Endpoint"])
    return endpoints


def _provision_functions(state: State) -> None:
    """Every function of template.yaml in moto, in both regions, as the regional stack deploys
    it: its environment (the global writer endpoint as database host, secret by name), the
    processor's `live` alias on a published version, reserved concurrency. The front runs them
    (ops/sandbox/front/lambdas.py); drctl fences, unfences and re-points them here."""
    iam = moto_client(state, "iam", state.regions["primary"])
    role_arn = iam.create_role(
        RoleName=f"dr-payment-functions-{state.env}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    endpoint = front_rds.global_endpoint(names.global_cluster(state.env))
    environments = _env_files(state, LOOPBACK)
    for role, region in state.regions.items():
        resolve = resolver(state, role)
        lam = moto_client(state, "lambda", region)
        ssm = moto_client(state, "ssm", region)
        for path, value in {**resolve_ssm(state, role), "aurora/writer-endpoint": endpoint}.items():
            ssm.put_parameter(
                Name=names.parameter(state.env, path), Value=value, Type="String", Overwrite=True
            )
        for logical_id in functions.function_ids():
            fn = functions.function(logical_id)
            variables = {
                k: v for k, v in environments[role][logical_id].items() if not k.startswith("AWS_")
            }
            if "DB_HOST" in variables:
                variables.update(DB_HOST=endpoint, DB_PORT="3306")
            name = resolve.function_name(fn)
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role_arn,
                Handler=fn.handler,
                Code={"ZipFile": _placeholder_zip()},
                Timeout=resolve.number(fn, "Timeout", 3),
                MemorySize=resolve.number(fn, "MemorySize", 128),
                Environment={"Variables": variables},
            )
            if "AutoPublishAlias" in fn.properties:
                version = lam.publish_version(FunctionName=name)["Version"]
                lam.create_alias(
                    FunctionName=name, Name=str(fn.properties["AutoPublishAlias"]),
                    FunctionVersion=version,
                )  # fmt: skip
            reserved = resolve.number(fn, "ReservedConcurrentExecutions", -1)
            if reserved >= 0:
                lam.put_function_concurrency(
                    FunctionName=name, ReservedConcurrentExecutions=reserved
                )


def resolve_ssm(state: State, role: str) -> dict[str, str]:
    """The SSM parameters infra-global publishes, as the sandbox serves them (path -> value)."""
    values = resolver(state, role).ssm
    return {path: value for path, value in values.items() if value}


def _placeholder_zip() -> bytes:
    """moto wants a code package; the front runs the real code from src/ instead."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "the sandbox front runs the functions from src/\n")
    return buffer.getvalue()


def _provision_ledger(topology: Topology, password: str) -> None:
    """Schema and app user on the writer; they reach the replica by replication, as on Aurora."""
    with topology.primary.root() as conn:
        ledger_schema.apply(conn, DB_NAME)
        ledger_schema.ensure_app_user(conn, DB_NAME, APP_USER, password)
    topology.wait_caught_up()


def _server_processes(topology: Topology) -> list[Process]:
    processes = []
    for region, server in topology.servers.items():
        pid = server.pid
        if pid is not None and server.is_ours(pid):
            processes.append(Process(mariadb_process(region), pid, server.port, MARIADB_PROGRAMS))
    return processes


def _start_bridge(state: State, paths: Paths, address: str, out: Out) -> None:
    """Forwarders on the docker bridge. Asked for (SANDBOX_BIND set): a failure fails `up`.
    Automatic: a failure is a note, and the sandbox stays on loopback only."""
    state.bridge = address
    try:
        for name, port in _bridge_targets(state):
            state.processes.append(bridge.start_forwarder(name, address, port, paths.bridge_log))
            state.save(paths)
    except bridge.BridgeRefused as exc:
        if bridge.requested():
            raise
        for process in [p for p in state.processes if p.name.startswith("bridge-")]:
            terminate(process)
            state.processes.remove(process)
        state.bridge = ""
        state.save(paths)
        out(f"note: containers cannot reach this sandbox ({exc}); loopback only")


def _bridge_targets(state: State) -> list[tuple[str, int]]:
    """What a container must reach (bridge.py): the AWS front, the global writer endpoint and
    each region's server, by forwarder."""
    targets = [
        ("bridge-front", int(state.aws_endpoint_url.rsplit(":", 1)[1])),
        ("bridge-writer-endpoint", state.writer_port),
    ]
    targets += [(f"bridge-{mariadb_process(r)}", s.port) for r, s in ledger(state).servers.items()]
    return targets


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
    docker = _env_files(state, DOCKER_HOST_NAME)
    for role in state.regions:
        _write_private(paths.env_file(role), local[role])
        _write_private(paths.env_docker_file(role), docker[role])
    write_endpoints(state, paths, password)


def write_endpoints(state: State, paths: Paths, password: str) -> None:
    """endpoints.json: moto, and each region's MariaDB by region and by region role, with its
    replication role (`primary` takes writes, `replica` is read-only and replicates it)."""
    topology = ledger(state)
    by_region: dict[str, dict[str, Any]] = {}
    for region, server in topology.servers.items():
        by_region[region] = {
            "host": LOOPBACK,
            "port": server.port,
            "user": APP_USER,
            "password": password,
            "database": DB_NAME,
            "role": topology.role(region),
            "read_only": region != topology.writer,
            **({"replicates_from": topology.writer} if region != topology.writer else {}),
            "admin_socket": str(server.socket),  # root, unix socket only
        }
    mysql: dict[str, Any] = dict(by_region)
    mysql.update({role: by_region[region] for role, region in state.regions.items()})
    _write_private(
        paths.endpoints,
        {
            "aws_endpoint_url": state.aws_endpoint_url,
            "moto_url": state.moto_url,  # behind the front; the harness's own calls only
            "regions": state.regions,
            "mysql": mysql,
            "mysql_writer": topology.writer,
            # The global writer endpoint both regions' functions use: follows the writer.
            "mysql_global_writer": {"host": LOOPBACK, "port": state.writer_port},
            # What a container on this machine uses instead of 127.0.0.1 (same ports): Linux
            # via the docker bridge forwarders, Docker Desktop by itself.
            "docker": {"host": DOCKER_HOST_NAME, "bridge": state.bridge or None},
        },
    )


def relative(path: Path) -> str:
    """Paths as a user in the repo root would type them."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def summary(state: State, paths: Paths, seconds: float) -> str:
    topology = ledger(state)
    primary, secondary = state.regions["primary"], state.regions["secondary"]
    writer, replica = topology.servers[primary], topology.servers[secondary]
    env_json, endpoints = relative(paths.env_primary), relative(paths.endpoints)
    creds = " ".join(f"{k}={v}" for k, v in DUMMY_CREDENTIALS.items())
    containers = (
        f"also on the docker bridge {state.bridge} (same ports) for `sam local invoke`"
        if state.bridge
        else "loopback only (no docker0 bridge: SANDBOX_BIND in README)"
    )
    return "\n".join(
        [
            f"sandbox up in {seconds:.1f}s ({relative(paths.root)}, env {state.env})",
            f"  AWS         {state.aws_endpoint_url}  regions {primary} (primary active), "
            f"{secondary} (secondary); moto behind the front ({relative(paths.front_log)})",
            f"  MariaDB     {primary} {LOOPBACK}:{writer.port} (writer), {secondary} "
            f"{LOOPBACK}:{replica.port} (read-only replica); global writer endpoint "
            f"{LOOPBACK}:{state.writer_port}; database {DB_NAME}, "
            f"user {APP_USER} (password in {endpoints})",
            f"  files       {env_json} (SAM --env-vars), {relative(paths.env_secondary)}, "
            f"{relative(paths.env_docker)}, {endpoints}",
            f"  containers  {containers}",
            "try:",
            "  make invoke FN=PaymentProcessorFunction EVENT=events/01_charge_usd.json",
            "  make demo",
            f"  {creds} aws --endpoint-url {state.aws_endpoint_url} --region {primary} "
            f"dynamodb scan --table-name dr-payment-sessions-{state.env}",
            f"  mariadb -h {LOOPBACK} -P {writer.port} -u {APP_USER} -p {DB_NAME}   "
            f"# password: {endpoints}",
            "  python -m ops.sandbox replication status      # lag, hold, break, promote: --help",
            "  make local-invoke FN=PaymentProcessorFunction EVENT=events/01_charge_usd.json"
            "   # sam local invoke (Docker)",
            "stop it with: make sandbox-down",
        ]
    )


# -- drills: the ledger changed under a running sandbox ------------------------------------------


@contextlib.contextmanager
def _locked(paths: Paths) -> Any:
    """One change of the ledger at a time, across processes (the front's RDS calls, the
    replication CLI, a drill)."""
    paths.lock.touch(mode=0o600, exist_ok=True)
    with open(paths.lock) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def change_ledger(paths: Paths, action: Callable[[Topology], Any]) -> Any:
    """Run `action` on the running sandbox's ledger (replication.Topology: delay, kill, promote,
    rebuild ...), then make state.json, endpoints.json and the env files say what it did: a
    killed server is no longer expected to run, a promoted one is the writer, a rebuilt one has
    its new PID (and its bridge forwarder its new port)."""
    with _locked(paths):
        state = State.load(paths)
        if state is None or not state.ready or state.version != STATE_VERSION:
            raise SandboxNotRunning(f"no sandbox running in {paths.root}: run `make sandbox` first")
        topology = ledger(state)
        try:
            return action(topology)
        finally:
            _record_ledger(state, paths, topology)


def _record_ledger(state: State, paths: Paths, topology: Topology) -> None:
    state.ledger = topology.describe()
    servers = _server_processes(topology)
    wanted = dict(_bridge_targets(state)) if state.bridge else {}
    kept = []
    for process in state.processes:
        if process.name.startswith("mariadb-"):
            continue  # replaced by what runs now
        if process.name.startswith("bridge-") and wanted.get(process.name) != process.port:
            terminate(process)  # its server is gone or moved to another port
            continue
        kept.append(process)
    state.processes = kept + servers
    for name, port in wanted.items():
        if not any(p.name == name for p in kept):
            state.processes.append(
                bridge.start_forwarder(name, state.bridge, port, paths.bridge_log)
            )
    state.save(paths)
    password = json.loads(paths.endpoints.read_text())["mysql"]["primary"]["password"]
    _write_files(state, paths, password)


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
    """MariaDB servers left on our data folders without a state file (an `up` killed mid-way)."""
    stopped = False
    folders = (
        sorted(p for p in paths.mariadb.glob("*") if p.is_dir()) if paths.mariadb.is_dir() else []
    )
    for folder in [paths.mariadb, *folders]:  # the folder itself: sandboxes before replication
        server = MariaDBServer(folder)
        pid = server.pid
        if pid is None or not server.is_ours(pid):
            continue
        args = command_line(pid) or []
        port = next((a.split("=", 1)[1] for a in args if a.startswith("--port=")), "0")
        out(terminate(Process(f"mariadb ({folder.name})", pid, int(port), MARIADB_PROGRAMS)))
        stopped = True
    return stopped


def _remove_created(paths: Paths) -> None:
    for path in paths.created():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        paths.root.rmdir()  # only when empty: SANDBOX_DIR may hold the user's own files
