"""Lambda Invoke without Docker: the function's configuration comes from moto (the version its
`live` alias points at, with the environment drctl may have changed), and its real code runs
in-process, one warm "execution environment" per concurrent invocation, as Lambda reuses them.

What Lambda does around the handler and is emulated here: reserved concurrency (0 throttles:
drctl's fence), an unhandled exception answered with X-Amz-Function-Error, the executed version
in X-Amz-Executed-Version. The database host a function is configured with is a name (the
global writer endpoint, or a cluster endpoint after a detach-and-promote); it is resolved to the
sandbox server that name leads to, as DNS would.

Each handler is driven through its composition root with settings built from that function's
own environment (its `wiring.build_service(settings)` and undecorated entry point), not through
os.environ: two regions' functions share this process. Unknown handlers are refused clearly.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ops.sandbox.invoke import SandboxContext

UNRESERVED_LIMIT = 16  # execution environments per function when no concurrency is reserved
KEPT_VERSIONS = 6  # function versions kept warm (a new configuration starts cold, as in Lambda)
CONFIG_SECONDS = 2.0  # how long a read configuration is trusted (besides writes seen here)
Handler = Callable[[Any, Any], Any]
Resolver = Callable[[str, str], tuple[str, str]]  # (DB_HOST, DB_PORT) -> what DNS would give


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    body = json.dumps({"Type": "User", "message": message, **extra}).encode()
    return Reply(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})


class _Environments:
    """Warm execution environments of one function version: reused, built when all are busy."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def one(self) -> Iterator[Any]:
        with self._lock:
            environment = self._idle.pop() if self._idle else None
        if environment is None:
            environment = self._build()  # a cold start
        try:
            yield environment
        finally:
            with self._lock:
                self._idle.append(environment)


def _processor(env: dict[str, str]) -> Handler:
    from payment_processor.handler import process
    from payment_processor.wiring import build_service
    from shared import config

    settings = config.load(config.ProcessorSettings, env)
    pool = _Environments(lambda: build_service(settings))

    def run(event: Any, context: Any) -> Any:
        with pool.one() as service:
            return process(
                event, context, service=service, deadline_margin=settings.deadline_margin_seconds
            )

    return run


def _health(env: dict[str, str]) -> Handler:
    from health.handler import respond
    from health.wiring import build_service
    from shared import config

    settings = config.load(config.HealthSettings, env)
    pool = _Environments(lambda: build_service(settings))

    def run(event: Any, context: Any) -> Any:
        with pool.one() as service:
            return respond(event, context, service=service)

    return run


def _ledger_export(env: dict[str, str]) -> Handler:
    from ledger_export.handler import respond
    from shared import config
    from shared.adapters.ledger_export import MySQLLedgerRows
    from shared.adapters.mysql import MySQLConnector

    settings = config.load(config.LedgerExportSettings, env)
    pool = _Environments(lambda: MySQLLedgerRows(MySQLConnector.from_settings(settings)))

    def run(event: Any, context: Any) -> Any:
        with pool.one() as rows:
            return respond(event, rows=rows, max_page=settings.export_max_page)

    return run


# template.yaml's Handler -> how the sandbox drives it in-process.
HANDLERS: dict[str, Callable[[dict[str, str]], Handler]] = {
    "payment_processor.handler.lambda_handler": _processor,
    "health.handler.lambda_handler": _health,
    "ledger_export.handler.lambda_handler": _ledger_export,
}


@dataclass(frozen=True)
class _Deployed:
    name: str
    version: str
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    reserved: int | None


class LambdaService:
    def __init__(self, client: Callable[[str, str], Any], resolve_db: Resolver) -> None:
        self._client = client  # (service, region) -> a moto client
        self._resolve_db = resolve_db
        self._deployed: dict[tuple[str, str, str], tuple[float, _Deployed]] = {}
        self._generation: dict[str, int] = {}  # per region: bumped by every Lambda write
        self._handlers: OrderedDict[str, Handler] = OrderedDict()
        self._running: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def invalidate(self, region: str) -> None:
        """A Lambda write went through (configuration, alias, concurrency): read them again."""
        with self._lock:
            self._generation[region] = self._generation.get(region, 0) + 1
            for key in [k for k in self._deployed if k[0] == region]:
                del self._deployed[key]

    def _lookup(self, region: str, function: str, qualifier: str) -> _Deployed | None:
        key = (region, function, qualifier)
        with self._lock:
            cached = self._deployed.get(key)
            generation = self._generation.get(region, 0)
        if cached is not None and time.monotonic() - cached[0] < CONFIG_SECONDS:
            return cached[1]
        lam = self._client("lambda", region)
        arguments = {"FunctionName": function}
        if qualifier != "$LATEST":
            arguments["Qualifier"] = qualifier
        try:
            configuration = lam.get_function_configuration(**arguments)
        except lam.exceptions.ResourceNotFoundException:
            return None
        reserved = lam.get_function_concurrency(FunctionName=configuration["FunctionName"]).get(
            "ReservedConcurrentExecutions"
        )
        found = _Deployed(
            name=configuration["FunctionName"],
            version=str(configuration.get("Version", "$LATEST")),
            handler=str(configuration.get("Handler", "")),
            environment=dict(configuration.get("Environment", {}).get("Variables", {})),
            timeout=int(configuration.get("Timeout", 3)),
            memory=int(configuration.get("MemorySize", 128)),
            reserved=None if reserved is None else int(reserved),
        )
        with self._lock:
            if self._generation.get(region, 0) == generation:  # no write while we read
                self._deployed[key] = (time.monotonic(), found)
        return found

    def _handler(self, region: str, deployed: _Deployed) -> Handler:
        environment = dict(deployed.environment)
        if "DB_HOST" in environment:
            host, port = self._resolve_db(
                environment["DB_HOST"], environment.get("DB_PORT", "3306")
            )
            environment["DB_HOST"], environment["DB_PORT"] = host, port
        environment["AWS_REGION"] = region
        digest = hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest()
        key = f"{region}/{deployed.name}/{deployed.version}/{digest}"
        with self._lock:
            found = self._handlers.get(key)
            if found is not None:
                self._handlers.move_to_end(key)
        if found is None:
            factory = HANDLERS.get(deployed.handler)
            if factory is None:
                raise LookupError(f"the sandbox cannot run handler {deployed.handler} in-process")
            found = factory(environment)
            with self._lock:
                self._handlers[key] = found
                while len(self._handlers) > KEPT_VERSIONS:  # the least recently invoked goes
                    self._handlers.popitem(last=False)
        return found

    @contextmanager
    def _slot(self, region: str, deployed: _Deployed) -> Iterator[bool]:
        limit = UNRESERVED_LIMIT if deployed.reserved is None else deployed.reserved
        key = (region, deployed.name)
        with self._lock:
            running = self._running.get(key, 0)
            granted = running < limit
            if granted:
                self._running[key] = running + 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._running[key] -= 1

    def invoke(self, region: str, function: str, qualifier: str | None, payload: bytes) -> Reply:
        if function.startswith("arn:"):
            parts = function.split(":")
            function, qualifier = parts[6], (parts[7] if len(parts) > 7 else qualifier)
        deployed = self._lookup(region, function, qualifier or "$LATEST")
        if deployed is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {function}")
        with self._slot(region, deployed) as granted:
            if not granted:
                return _error(
                    429,
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                    Reason="ReservedFunctionConcurrentInvocationLimitExceeded",
                )
            headers = {
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": deployed.version,
            }
            try:
                handler = self._handler(region, deployed)
                event = json.loads(payload or b"{}")
                context = SandboxContext(deployed.name, region, deployed.memory, deployed.timeout)
                result = handler(event, context)
            except Exception as exc:  # noqa: BLE001 - what Lambda reports as a function error
                headers["X-Amz-Function-Error"] = "Unhandled"
                body = {"errorMessage": str(exc), "errorType": type(exc).__name__}
                return Reply(200, json.dumps(body).encode(), headers)
            return Reply(200, json.dumps(result, default=str).encode(), headers)
