"""The sandbox's AWS endpoint: every AWS call of drctl, the functions and the drill goes here
(AWS_ENDPOINT_URL); what moto has is forwarded to it untouched, what moto lacks and the DR
procedures need is served here, and a region can be made to die.

- The region of a call is read from its SigV4 credential scope (one URL serves both regions, as
  moto does). A dead region's calls hang until the client gives up ("hang", a region that does
  not answer) or are dropped at once ("refuse").
- Lambda Invoke: the real handlers in-process (lambdas.py).
- RDS global clusters: from the two MariaDB servers (rds.py); the global writer endpoint
  (writer_endpoint.py) is the database host of both regions' functions.
- Secrets Manager StopReplicationToReplica (moto: 500): the replica becomes a standalone secret
  with the same name and value (its ARN changes; the sandbox's functions name secrets by name).
- Control, loopback only, for the drill: /_sandbox/regions/R (dead / alive), .../database
  (restart a killed server on its own data), /_sandbox/faults, /_sandbox/state.

    python -m ops.sandbox.front --dir .sandbox --port P --writer-port W --moto URL
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3

from ops.sandbox import lifecycle
from ops.sandbox.front import lambdas, rds
from ops.sandbox.front.writer_endpoint import WriterEndpoint
from ops.sandbox.state import DUMMY_CREDENTIALS, LOOPBACK, Paths, State
from shared import names

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
HANG_SECONDS = 60.0  # a dead region's call is held at most this long (every client gives up first)


class Front:
    def __init__(self, paths: Paths, moto_url: str, writer_port: int) -> None:
        self.paths = paths
        self.moto = urlsplit(moto_url)
        self.dead: dict[str, str] = {}  # region -> "hang" | "refuse"
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self.writer = WriterEndpoint(writer_port, self._writer_port)
        self.rds = rds.GlobalDatabase(paths, on_writer_change=self.writer.reset)
        self.lambdas = lambdas.LambdaService(self.client, self._resolve_db_host)

    # -- helpers ----------------------------------------------------------------------------------

    def client(self, service: str, region: str) -> Any:
        """A client straight to moto: the front's own calls never meet a dead region."""
        with self._clients_lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = boto3.session.Session(
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    region_name=region,
                ).client(service, endpoint_url=self.moto.geturl())  # type: ignore[call-overload]
            return self._clients[key]

    def _state(self) -> State:
        state = State.load(self.paths)
        if state is None:
            raise RuntimeError(f"no sandbox state in {self.paths.root}")
        return state

    def _writer_port(self) -> int | None:
        region = self.rds.writer_region()
        if region is None:
            return None
        return int(self._state().ledger["servers"][region]["port"])

    def _resolve_db_host(self, host: str, port: str) -> tuple[str, str]:
        """What DNS gives for a database host name: the global writer endpoint -> the writer
        forwarder; a cluster endpoint -> that region's server; anything else as it is."""
        if self.rds.is_global_endpoint(host):
            return LOOPBACK, str(self.writer.port)
        state = self._state()
        for role, region in state.regions.items():
            if host.startswith(f"{names.cluster(role, state.env)}.cluster-"):
                return LOOPBACK, str(state.ledger["servers"][region]["port"])
        return host, port

    # -- forwarding -------------------------------------------------------------------------------

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(
            self.moto.hostname or LOOPBACK, self.moto.port, timeout=120
        )
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
            sent["Host"] = self.moto.netloc
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
            return answer.status, kept, data
        finally:
            conn.close()

    # -- region control -------------------------------------------------------------------------

    def set_region(self, region: str, wanted: dict[str, Any]) -> dict[str, Any]:
        if wanted.get("state") == "dead":
            self.dead[region] = str(wanted.get("mode", "hang"))
            self.rds.set_dead(region, True)
            if wanted.get("kill_database", True):
                lifecycle.change_ledger(self.paths, lambda ledger: ledger.kill(region))
            return {"region": region, "dead": self.dead[region]}
        returned = self.rds.region_returned(region)
        self.dead.pop(region, None)
        self.lambdas.invalidate(region)
        return returned

    def restart_database(self, region: str) -> dict[str, Any]:
        """A killed server back on its own (stale) data: writable only where it is still the
        writer of its global cluster (a detached old primary, before failback deletes it)."""
        writable = self.rds.writer_region() == region

        def restart(ledger: Any) -> None:
            server = ledger.servers[region]
            pid = server.pid
            if pid is None or not server.is_ours(pid):
                ledger.restart(region, read_only=not writable)

        lifecycle.change_ledger(self.paths, restart)
        return {"region": region, "writable": writable}

    def state(self) -> dict[str, Any]:
        path = rds.rds_state_path(self.paths)
        return {
            "dead": dict(self.dead),
            "rds": json.loads(path.read_text()) if path.exists() else None,
            "writer_endpoint_port": self.writer.port,
        }


def _scope(authorization: str) -> tuple[str | None, str | None]:
    found = _SCOPE.search(authorization or "")
    return (found.group(1), found.group(2)) if found else (None, None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    front: Front  # set on the subclass the server uses
    server_version = "dr-payment-sandbox-front"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return  # one line per call would drown the front's log; errors are logged by hand

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET  # noqa: N815

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(data).encode())

    def _die(self, mode: str) -> None:
        """A dead region: no answer. `hang` holds the connection until the client leaves."""
        self.close_connection = True
        if mode == "hang":
            deadline = time.monotonic() + HANG_SECONDS
            while time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.5)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):  # it left
                    break
        with contextlib.suppress(OSError):
            self.connection.shutdown(2)

    def _handle(self) -> None:
        front = self.front
        body = self._body()
        url = urlsplit(self.path)
        if url.path.startswith("/_sandbox/"):
            self._control(url.path, body)
            return
        region, service = _scope(self.headers.get("Authorization", ""))
        if region in front.dead:
            self._die(front.dead[region])
            return
        try:
            status, headers, data = self._dispatch(region or "us-east-1", service or "", url, body)
        except Exception as exc:  # noqa: BLE001 - answered as AWS answers an internal error
            print(f"front: {service} {self.command} {url.path}: {type(exc).__name__}: {exc}")
            status, headers = 500, {"Content-Type": "application/json"}
            data = json.dumps({"__type": "InternalFailure", "message": str(exc)}).encode()
        if region in front.dead:  # it died while this call ran: the answer never arrives
            self._die(front.dead[region])
            return
        self._send(status, headers, data)

    def _dispatch(
        self, region: str, service: str, url: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        front = self.front
        headers = dict(self.headers.items())
        if service == "lambda":
            invoke = _INVOKE.match(url.path)
            if invoke and self.command == "POST":
                qualifier = (parse_qs(url.query).get("Qualifier") or [None])[0]
                reply = front.lambdas.invoke(region, invoke.group("name"), qualifier, body)
                return reply.status, reply.headers, reply.body
            if self.command != "GET":
                front.lambdas.invalidate(region)
        if service == "rds":
            return self._rds(region, url, headers, body)
        if service == "secretsmanager":
            target = self.headers.get("X-Amz-Target", "")
            if target.endswith(".StopReplicationToReplica"):
                return _stop_replication(front, region, json.loads(body or b"{}"))
        return front.forward(self.command, self.path, headers, body)

    def _rds(
        self, region: str, url: Any, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        front = self.front
        params = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        action = params.get("Action", "")
        if action in rds.GlobalDatabase.HANDLED:
            reply = front.rds.handle(region, action, params)
            return reply.status, reply.headers, reply.body
        if action == "CreateDBCluster" and params.get("GlobalClusterIdentifier"):
            return _create_member(front, region, url, headers, params)
        status, answer_headers, data = front.forward(self.command, self.path, headers, body)
        if action == "DeleteDBCluster" and status == 200:
            front.rds.deleting(
                region, params["DBClusterIdentifier"], params.get("FinalDBSnapshotIdentifier")
            )
        return status, answer_headers, data

    def _control(self, path: str, body: bytes) -> None:
        front = self.front
        wanted = json.loads(body or b"{}")
        parts = path.strip("/").split("/")[1:]
        try:
            if parts == ["health"]:
                self._json(200, {"ok": True})
            elif parts == ["state"]:
                self._json(200, front.state())
            elif parts == ["faults"] and self.command == "POST":
                front.rds.set_faults(wanted)
                self._json(200, wanted)
            elif len(parts) == 2 and parts[0] == "regions" and self.command == "POST":
                self._json(200, front.set_region(parts[1], wanted))
            elif len(parts) == 3 and parts[0] == "regions" and parts[2] == "database":
                self._json(200, front.restart_database(parts[1]))
            else:
                self._json(404, {"error": f"no such control: {path}"})
        except Exception as exc:  # noqa: BLE001 - the drill shows it
            print(f"front: control {path}: {type(exc).__name__}: {exc}")
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})


def _create_member(
    front: Front, region: str, url: Any, headers: dict[str, str], params: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """CreateDBCluster into a global cluster: moto keeps the regional cluster (created outside
    any global cluster, with the credentials moto wants of a standalone one); the global
    membership and the server are ours."""
    global_id = params.pop("GlobalClusterIdentifier")
    identifier = params["DBClusterIdentifier"]
    params.setdefault("MasterUsername", "admin")
    params.setdefault("MasterUserPassword", "sandbox-not-a-secret-0")
    _forget_automated_snapshots(front, region, identifier)
    status, answer_headers, data = front.forward(
        "POST", url.path or "/", headers, urlencode(params).encode()
    )
    if status == 200:
        front.rds.joined(region, identifier, global_id)
    return status, answer_headers, data


def _forget_automated_snapshots(front: Front, region: str, identifier: str) -> None:
    """moto names a cluster's automated snapshot after the minute it was made and keeps it after
    the cluster goes, so a cluster made again under the same name within that minute is refused
    (AWS has no such clash)."""
    rds_client = front.client("rds", region)
    found = rds_client.describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
    for snapshot in found:
        if snapshot["DBClusterSnapshotIdentifier"].startswith(f"rds:{identifier}-"):
            with contextlib.suppress(Exception):
                rds_client.delete_db_cluster_snapshot(
                    DBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotIdentifier"]
                )


def _stop_replication(
    front: Front, region: str, request: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    secret_id = str(request.get("SecretId", ""))
    here = front.client("secretsmanager", region)
    try:
        described = here.describe_secret(SecretId=secret_id)
    except here.exceptions.ResourceNotFoundException:
        body = {"__type": "ResourceNotFoundException", "Message": f"{secret_id} not found"}
        return 400, headers, json.dumps(body).encode()
    primary = described.get("PrimaryRegion")
    if not primary or primary == region:
        body = {"__type": "InvalidRequestException", "Message": f"{secret_id} is not a replica"}
        return 400, headers, json.dumps(body).encode()
    value = here.get_secret_value(SecretId=secret_id)["SecretString"]
    front.client("secretsmanager", primary).remove_regions_from_replication(
        SecretId=described["Name"], RemoveReplicaRegions=[region]
    )
    made = here.create_secret(Name=described["Name"], SecretString=value)
    return 200, headers, json.dumps({"ARN": made["ARN"]}).encode()


def serve(paths: Paths, port: int, writer_port: int, moto_url: str) -> None:
    front = Front(paths, moto_url, writer_port)
    front.writer.start()
    handler: type[Handler] = type("BoundHandler", (Handler,), {"front": front})
    server = ThreadingHTTPServer((LOOPBACK, port), handler)
    server.daemon_threads = True
    print(f"front: listening on {LOOPBACK}:{port}, writer endpoint :{writer_port}", flush=True)
    server.serve_forever()


def _environment(moto_url: str) -> None:
    """This process runs the functions: their SDK calls go straight to moto, with dummy keys."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "DrPayment")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "dr-payment-sandbox")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ops.sandbox.front")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--writer-port", type=int, required=True)
    parser.add_argument("--moto", required=True)
    args = parser.parse_args(argv)
    _environment(args.moto)
    serve(Paths(args.dir.resolve()), args.port, args.writer_port, args.moto)
