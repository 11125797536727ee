"""Run a function's real handler in-process against the sandbox, the way Lambda would: its
environment (from the SAM env file) set before the handler module is imported, its CodeUri on
the import path, a small LambdaContext stand-in, and its output kept off the response line."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any, TextIO

from ops.sandbox import functions, lifecycle
from ops.sandbox.state import DUMMY_CREDENTIALS, ROOT, Paths, SandboxNotRunning, State

Handler = Callable[[dict[str, Any], Any], Any]


class SandboxContext:
    """The parts of the Lambda context handlers and Powertools read."""

    function_version = "$LATEST"
    log_stream_name = "sandbox"

    def __init__(self, function_name: str, region: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{functions.ACCOUNT_ID}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._expires = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._expires - time.monotonic()) * 1000))


def _stream_handlers() -> Iterator[logging.StreamHandler[Any]]:
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler):
                yield handler


@contextmanager
def route_output(target: TextIO) -> Iterator[None]:
    """Send the function's stdout (Powertools logs, EMF metrics) to `target` for the duration."""
    stdouts = {id(sys.stdout), id(sys.__stdout__)}
    moved = []
    for handler in _stream_handlers():
        if id(handler.stream) in stdouts:
            moved.append((handler, handler.stream))
            handler.setStream(target)
    try:
        with redirect_stdout(target):
            yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


class FunctionRunner:
    """One function's handler, loaded once like a Lambda execution environment."""

    def __init__(
        self,
        fn: functions.FunctionDefinition,
        environment: dict[str, str],
        context_info: dict[str, Any],
    ) -> None:
        self.fn = fn
        self._context_info = context_info
        _apply_environment(environment)
        code_root = str((ROOT / fn.code_uri).resolve())
        if code_root not in sys.path:
            sys.path.insert(0, code_root)  # what Lambda does with the task root
        self._handler: Handler | None = None

    def _load(self) -> Handler:
        if self._handler is None:
            module = importlib.import_module(self.fn.module)
            self._handler = getattr(module, self.fn.attribute)
        return self._handler

    def __call__(self, event: dict[str, Any], *, output: TextIO) -> Any:
        with route_output(output):
            handler = self._load()
            context = SandboxContext(**self._context_info)
            return handler(event, context)


def _apply_environment(environment: dict[str, str]) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ.update(environment)
    os.environ["AWS_DEFAULT_REGION"] = environment.get("AWS_REGION", "us-east-1")
    # Not in Lambda: no X-Ray daemon to send segments to.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def runner(paths: Paths, logical_id: str, role: str = "primary") -> FunctionRunner:
    """The function's runner with the environment `up` wrote for `role`."""
    fn = functions.function(logical_id)  # UnknownFunction before anything else
    state = State.load(paths)
    if state is None or not state.is_running():
        raise SandboxNotRunning(f"no sandbox running in {paths.root}: run `make sandbox` first")
    env_files = json.loads(paths.env_file(role).read_text())
    if logical_id not in env_files:
        raise SandboxNotRunning(
            f"{logical_id} is not in {paths.env_file(role)}: "
            "`make sandbox-down` then `make sandbox` to regenerate it"
        )
    resolve = lifecycle.resolver(state, role)
    context_info = {
        "function_name": resolve.function_name(fn),
        "region": state.regions[role],
        "memory_mb": resolve.number(fn, "MemorySize", 128),
        "timeout_s": resolve.number(fn, "Timeout", 3),
    }
    return FunctionRunner(fn, env_files[logical_id], context_info)


def error_response(exc: BaseException) -> dict[str, Any]:
    """What Lambda reports for an unhandled exception."""
    return {"errorMessage": str(exc), "errorType": type(exc).__name__}
