"""`sam local invoke` against the sandbox: the one place its command line is written. README
quotes `python -m ops.sandbox.sam_local command`, `make local-invoke` runs `invoke`, and the
tests run both (tests/integration/test_sam_local.py), so the documented command cannot drift.

    python -m ops.sandbox.sam_local command [FN EVENT] [--role R]   print the command line
    python -m ops.sandbox.sam_local invoke FN EVENT [--role R]      run it; the function's JSON
                                                                    response is the last line
    python -m ops.sandbox.sam_local check [EVENT ...]               every events/*.json (or the
                                                                    ones named) through
                                                                    `make invoke` and through
                                                                    `sam local invoke`, from the
                                                                    same reset state; answers
                                                                    compared, timings printed

What makes it work on Linux and macOS alike: the function container reaches the sandbox as
host.docker.internal (`--add-host host.docker.internal:host-gateway`; Docker Desktop also knows
the name), the env-vars file names that host (.sandbox/env.docker.json), and on Linux the
sandbox also listens on the docker0 bridge (ops/sandbox/bridge.py). SAM CLI 1.170 ignores
`--docker-network host` (aws/aws-sam-cli#3609), so host networking is not used.

The functions are arm64. SAM builds a copy of the template for this machine's architecture
(SAM_LOCAL_ARCH overrides: arm64 on an x86_64 machine needs QEMU binfmt emulation, which Docker
Desktop has), into .aws-sam/local/. Where no registry can be reached, the local image
ops/sandbox/container_runtime.py builds is used (`--invoke-image ... --skip-pull-image`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ops.sandbox import container_runtime, lifecycle
from ops.sandbox.bridge import DEFAULT_BRIDGE, interface_address
from ops.sandbox.resources import REGIONAL_TEMPLATE, REGIONS, load_template
from ops.sandbox.state import DUMMY_CREDENTIALS, ROOT, Paths, State, sandbox_dir

BUILD_ROOT = ROOT / ".aws-sam" / "local"
BUILT_TEMPLATE = BUILD_ROOT / "build" / "template.yaml"
EVENTS = ROOT / "events"
TOOLS_SAM = ROOT / ".venv-tools" / "bin" / "sam"
ADD_HOST = f"{lifecycle.DOCKER_HOST_NAME}:host-gateway"
LOCAL_IMAGE_FLAGS = ("--invoke-image", container_runtime.IMAGE, "--skip-pull-image")
# Sample events that are not for the payment processor (its rule's target).
FUNCTION_FOR_EVENT = {
    "health_function_url.json": "HealthFunction",
    "replication_monitor_schedule.json": "ReplicationMonitorFunction",
}
DEFAULT_FUNCTION = "PaymentProcessorFunction"
EXAMPLE = ("PaymentProcessorFunction", "events/01_charge_usd.json")


class NotReady(RuntimeError):
    """Something `sam local invoke` needs is missing; the message says what to do."""


def machine_architecture() -> str:
    configured = os.environ.get("SAM_LOCAL_ARCH", "").strip()
    if configured:
        if configured not in ("x86_64", "arm64"):
            raise NotReady(f"SAM_LOCAL_ARCH={configured}: x86_64 or arm64")
        return configured
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def _relative(path: Path) -> str:
    return lifecycle.relative(path)


def command(
    function: str, event: str, role: str = "primary", *, local_image: bool = False
) -> list[str]:
    """The command line, as a user types it from the repository root."""
    paths = Paths(sandbox_dir())
    region = REGIONS[role]
    argv = [
        "sam", "local", "invoke", function,
        "--event", event,
        "--template", _relative(BUILT_TEMPLATE),
        "--env-vars", _relative(paths.env_docker_file(role)),
        "--parameter-overrides", f"RegionRole={role}",
        "--region", region,
        "--add-host", ADD_HOST,
    ]  # fmt: skip
    return [*argv, *LOCAL_IMAGE_FLAGS] if local_image else argv


def display(argv: list[str]) -> str:
    credentials = " ".join(f"{k}={v}" for k, v in DUMMY_CREDENTIALS.items())
    return f"{credentials} {shlex.join(argv)}"


# -- build --------------------------------------------------------------------------------------


def _local_template(architecture: str) -> Path:
    """template.yaml with every function's Architectures set to `architecture`."""
    template = json.loads(json.dumps(load_template(REGIONAL_TEMPLATE)))  # a deep copy
    globals_ = template.setdefault("Globals", {}).setdefault("Function", {})
    globals_["Architectures"] = [architecture]
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.get("Properties", {}).pop("Architectures", None)
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    copy = BUILD_ROOT / "template.yaml"
    header = f"# generated by ops/sandbox/sam_local.py from template.yaml for {architecture}\n"
    copy.write_text(header + yaml.safe_dump(template, sort_keys=False))
    return copy


def _inputs_mtime() -> float:
    files = [REGIONAL_TEMPLATE, *ROOT.joinpath("src").rglob("*")]
    return max(f.stat().st_mtime for f in files if f.is_file() and "__pycache__" not in f.parts)


def build(architecture: str, say: Callable[[str], None]) -> None:
    """sam build of the local copy, unless the last one is for this architecture and newer than
    the template and src/."""
    stamp = BUILD_ROOT / "built-for"
    if (
        BUILT_TEMPLATE.exists()
        and stamp.exists()
        and stamp.read_text().strip() == architecture
        and stamp.stat().st_mtime > _inputs_mtime()
    ):
        return
    if not TOOLS_SAM.exists():
        raise NotReady("SAM CLI not found: run `make tools`")
    copy = _local_template(architecture)
    python312 = Path(sys.base_prefix) / "bin"  # SAM checks python3.12 is on PATH
    env = {**os.environ, "PATH": f"{python312}{os.pathsep}{os.environ.get('PATH', '')}"}
    say(f"sam build ({architecture}) -> {_relative(BUILD_ROOT / 'build')}")
    started = time.monotonic()
    result = subprocess.run(
        [str(TOOLS_SAM), "build", "--template-file", str(copy),
         "--build-dir", str(BUILD_ROOT / "build"), "--base-dir", str(ROOT)],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        raise NotReady(f"sam build failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    stamp.write_text(architecture + "\n")
    say(f"sam build done in {time.monotonic() - started:.1f}s")


# -- invoke -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    engine: container_runtime.Engine
    local_image: bool


def prepare(say: Callable[[str], None]) -> Prepared:
    """Checks what `sam local invoke` needs (engine, a sandbox containers reach, a build)."""
    engine = container_runtime.find_engine()
    if engine is None:
        raise NotReady(
            "no container runtime: start Docker (or Docker Desktop), or as root on Debian/Ubuntu "
            "run `make container-runtime` (installs docker.io and builds a local Lambda image)"
        )
    paths = Paths(sandbox_dir())
    state = State.load(paths)
    if state is None or not state.is_running():
        raise NotReady("no sandbox running: `make sandbox` first")
    bridge = interface_address(DEFAULT_BRIDGE)
    if bridge and state.bridge != bridge:
        raise NotReady(
            f"the sandbox does not listen on the docker bridge ({DEFAULT_BRIDGE} {bridge}), so a "
            "container cannot reach it: `make sandbox-down && make sandbox` now that Docker runs"
        )
    build(machine_architecture(), say)
    return Prepared(engine, local_image=engine.has_image(container_runtime.IMAGE))


def invoke(
    function: str, event: str, role: str, prepared: Prepared, say: Callable[[str], None]
) -> tuple[Any, float, str]:
    """Runs the command; returns the function's response, the wall time, and SAM's stderr."""
    argv = command(function, event, role, local_image=prepared.local_image)
    say(f"running: {display(argv)}")
    env = {**prepared.engine.env(), **DUMMY_CREDENTIALS}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env["SAM_CLI_TELEMETRY"] = "0"
    started = time.monotonic()
    result = subprocess.run(
        [str(TOOLS_SAM), *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    lines = result.stdout.strip().splitlines()
    try:
        response = json.loads(lines[-1]) if lines else None
    except ValueError:
        response = None
    if result.returncode != 0 or response is None:
        raise NotReady(f"sam local invoke failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return response, seconds, result.stderr


def in_process(function: str, event: str, role: str) -> Any:
    """`make invoke`'s answer: the same command it runs, in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "ops.sandbox", "invoke", function, event, "--role", role],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": result.stderr.strip()[-500:]}


def function_for(event: Path) -> str:
    return FUNCTION_FOR_EVENT.get(event.name, DEFAULT_FUNCTION)


@dataclass(frozen=True)
class Comparison:
    event: str
    function: str
    in_process: Any
    sam_local: Any
    seconds: float

    @property
    def equal(self) -> bool:
        return bool(comparable(self.in_process) == comparable(self.sam_local))


def comparable(response: Any) -> Any:
    """What two runs must agree on. The replication monitor's figures are measurements (two
    runs never read the same lag): its runs agree when they publish and miss the same figures,
    for the same role."""
    if isinstance(response, dict) and {"published", "missing"} <= set(response):
        keys = ("metric", "store", "target_region", "region")

        def names(figures: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return sorted(tuple(str(f.get(k, "")) for k in keys) for f in figures)

        return {
            "role": response.get("role"),
            "published": names(response["published"]),
            "missing": names(response["missing"]),
        }
    return response


def check(events: list[Path], role: str, say: Callable[[str], None]) -> list[Comparison]:
    """Each event through `make invoke`'s path, then through `sam local invoke`, each series from
    the same reset sandbox state (like `make demo`), so the answers must be equal one by one."""
    from ops.sandbox import demo

    prepared = prepare(say)
    paths = Paths(sandbox_dir())
    state = State.load(paths)
    assert state is not None
    demo.reset_sandbox(state, paths)
    expected = [in_process(function_for(e), _relative(e), role) for e in events]
    demo.reset_sandbox(state, paths)
    results = []
    for event, answer in zip(events, expected, strict=True):
        response, seconds, _ = invoke(function_for(event), _relative(event), role, prepared, say)
        results.append(Comparison(event.name, function_for(event), answer, response, seconds))
    return results


def _answer(response: Any) -> str:
    if isinstance(response, dict) and "outcome" in response:
        return str(response["outcome"])
    if isinstance(response, dict) and "published" in response:
        return f"{len(response['published'])} figures"
    if isinstance(response, dict) and "statusCode" in response:
        return f"{response['statusCode']} {response.get('body', '')}"
    return json.dumps(response)[:40]


def _report(results: list[Comparison]) -> str:
    width = max(len(r.event) for r in results)
    head = f"{'EVENT'.ljust(width)}  {'FUNCTION':24}  {'ANSWER':12}  SECONDS  SAME AS make invoke"
    lines = [head]
    for r in results:
        mark = "yes" if r.equal else f"NO: make invoke {r.in_process} vs sam local {r.sam_local}"
        lines.append(
            f"{r.event.ljust(width)}  {r.function:24}  {_answer(r.sam_local):12}  "
            f"{r.seconds:7.1f}  {mark}"
        )
    seconds = sorted(r.seconds for r in results)
    same = sum(r.equal for r in results)
    lines.append(
        f"{same}/{len(results)} answers equal; sam local invoke {sum(seconds):.0f}s in all, "
        f"min {seconds[0]:.1f}s, median {seconds[len(seconds) // 2]:.1f}s, max {seconds[-1]:.1f}s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.sandbox.sam_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    show = sub.add_parser("command", help="print the sam local invoke command line")
    show.add_argument("function", nargs="?", default=EXAMPLE[0])
    show.add_argument("event", nargs="?", default=EXAMPLE[1])
    run = sub.add_parser("invoke", help="run sam local invoke against the sandbox")
    run.add_argument("function")
    run.add_argument("event")
    every = sub.add_parser("check", help="every sample event: sam local vs make invoke")
    every.add_argument("events", nargs="*")
    for each in (show, run, every):
        each.add_argument("--role", choices=["primary", "secondary"], default="primary")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(f"sam-local: {message}", file=sys.stderr, flush=True)

    try:
        if args.action == "command":
            print(display(command(args.function, args.event, args.role)))
            return 0
        if args.action == "invoke":
            response, seconds, logs = invoke(
                args.function, args.event, args.role, prepare(say), say
            )
            sys.stderr.write(logs)
            say(f"{seconds:.1f}s")
            print(json.dumps(response))
            return 0
        events = [Path(e).resolve() for e in args.events] or sorted(EVENTS.glob("*.json"))
        results = check(events, args.role, say)
        print(_report(results))
        return 0 if all(r.equal for r in results) else 1
    except NotReady as exc:
        print(f"sam-local: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
