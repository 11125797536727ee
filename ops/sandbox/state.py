"""Where the sandbox lives and what it started.

`up` records each process it starts (PID, port, program) in state.json as soon as it is running;
`down` and a later `up` act on a PID only while its command line is still that program on that
port, so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_VERSION = 3  # 2: a MariaDB per region, bridge forwarders; 3: the AWS front
LOOPBACK = "127.0.0.1"
# moto accepts any credentials; fixed dummies keep a real profile out of every sandbox call.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}


class SandboxNotRunning(RuntimeError):
    pass


def sandbox_dir() -> Path:
    """SANDBOX_DIR (the tests point it at a temporary folder), else .sandbox in the repo root."""
    configured = os.environ.get("SANDBOX_DIR")
    return Path(configured).resolve() if configured else ROOT / ".sandbox"


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def env_primary(self) -> Path:
        return self.root / "env.json"

    @property
    def env_secondary(self) -> Path:
        return self.root / "env.secondary.json"

    @property
    def env_docker(self) -> Path:
        return self.root / "env.docker.json"

    @property
    def env_docker_secondary(self) -> Path:
        return self.root / "env.docker.secondary.json"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def mariadb(self) -> Path:
        return self.root / "mariadb"

    @property
    def moto_log(self) -> Path:
        return self.root / "moto.log"

    @property
    def demo_log(self) -> Path:
        return self.root / "demo.log"

    @property
    def bridge_log(self) -> Path:
        return self.root / "bridge.log"

    @property
    def front_log(self) -> Path:
        return self.root / "front.log"

    @property
    def rds(self) -> Path:
        """The Aurora global clusters as the front keeps them (ops/sandbox/front/rds.py)."""
        return self.root / "rds.json"

    @property
    def snapshots(self) -> Path:
        """Final and stale cluster snapshots (dumps of the servers), kept like Aurora's."""
        return self.root / "snapshots"

    @property
    def lock(self) -> Path:
        return self.root / "state.lock"

    def env_file(self, role: str) -> Path:
        return self.env_primary if role == "primary" else self.env_secondary

    def env_docker_file(self, role: str) -> Path:
        return self.env_docker if role == "primary" else self.env_docker_secondary

    def created(self) -> list[Path]:
        """Everything `up` writes (logs too), so `down` removes only what is ours."""
        return [
            self.state,
            self.env_primary,
            self.env_secondary,
            self.env_docker,
            self.env_docker_secondary,
            self.endpoints,
            self.mariadb,
            self.moto_log,
            self.demo_log,
            self.bridge_log,
            self.front_log,
            self.rds,
            self.snapshots,
            self.lock,
        ]


@dataclass(frozen=True)
class Process:
    """A detached server `up` started. `programs`: acceptable basenames of its executable;
    `host`: the address it listens on (a bridge forwarder listens on the docker bridge)."""

    name: str
    pid: int
    port: int
    programs: tuple[str, ...]
    host: str = LOOPBACK

    def command_line(self) -> list[str] | None:
        return command_line(self.pid)

    def is_ours(self) -> bool:
        args = self.command_line()
        if not args:
            return False
        runs_program = any(Path(arg).name in self.programs for arg in args)
        port = re.compile(rf"(?<![0-9]){self.port}(?![0-9])")  # -p 8, --port=8, LISTEN:8,bind
        on_port = any(port.search(arg) for arg in args[1:])
        return runs_program and on_port

    def is_running(self) -> bool:
        return self.is_ours() and port_answers(self.port, self.host)


@dataclass
class State:
    env: str
    # What every client uses (the front, ops/sandbox/front); moto itself is behind it.
    aws_endpoint_url: str = ""
    moto_url: str = ""
    # The global writer endpoint: the front's forwarder to whichever server writes now.
    writer_port: int = 0
    regions: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    # Per role: resource names/URLs/ARNs the harness needs (queues, stand-in inbox, secret).
    aws: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The ledger's servers and which region is the writer (replication.Topology.describe()).
    ledger: dict[str, Any] = field(default_factory=dict)
    # The docker bridge address the servers are also reachable on ("" when not bridged).
    bridge: str = ""
    ready: bool = False
    version: int = STATE_VERSION

    def process(self, name: str) -> Process | None:
        return next((p for p in self.processes if p.name == name), None)

    def is_running(self) -> bool:
        return (
            self.ready
            and self.version == STATE_VERSION
            and bool(self.processes)
            and all(p.is_running() for p in self.processes)
        )

    def save(self, paths: Paths) -> None:
        data = asdict(self)
        tmp = paths.state.with_suffix(".tmp")
        tmp.touch(mode=0o600, exist_ok=True)  # holds the replication password
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(paths.state)

    @classmethod
    def load(cls, paths: Paths) -> State | None:
        try:
            data = json.loads(paths.state.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return cls(env="?")  # unreadable: treated as stale, nothing is signalled
        processes = [
            Process(
                p["name"],
                int(p["pid"]),
                int(p["port"]),
                tuple(p["programs"]),
                p.get("host", LOOPBACK),
            )
            for p in data.pop("processes", [])
        ]
        data.setdefault("version", 1)  # written before versions were recorded
        known = {name for name in cls.__dataclass_fields__ if name != "processes"}
        return cls(processes=processes, **{k: v for k, v in data.items() if k in known})


# -- processes ----------------------------------------------------------------------------------


def command_line(pid: int) -> list[str] | None:
    """The process's argv, or None when it is gone or a zombie (nothing left to signal)."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            if _zombie(proc):
                return None
            raw = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        args = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        return args or None
    # No /proc (macOS): ask ps.
    result = subprocess.run(
        ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    line = result.stdout.strip()
    if result.returncode != 0 or not line or line.split()[0].startswith("Z"):
        return None
    return line.split()[1:]


def _zombie(proc: Path) -> bool:
    stat = (proc / "stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def port_answers(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (in-process callers, tests)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(process: Process, timeout: float = 20.0) -> str:
    """Stop `process` if it is still ours; says what happened."""
    if not process.is_ours():
        if command_line(process.pid) is None:
            return f"{process.name} (pid {process.pid}) was not running"
        return f"{process.name}: pid {process.pid} now belongs to another program; left alone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(process.pid)
        if command_line(process.pid) is None:
            return f"{process.name} stopped (pid {process.pid})"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    _reap(process.pid)
    return f"{process.name} killed after {timeout:.0f}s (pid {process.pid})"
