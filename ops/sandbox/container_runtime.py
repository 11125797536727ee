"""A container engine and a Lambda-like Python 3.12 image for `sam local invoke`, on a machine
that has neither and cannot pull from a registry (stdlib only).

    python -m ops.sandbox.container_runtime install   apt-get docker.io, debootstrap, socat (root)
    python -m ops.sandbox.container_runtime start     a Docker engine: the one DOCKER_HOST or the
                                                      default socket names, else a private
                                                      dockerd of ours (root)
    python -m ops.sandbox.container_runtime image     local/lambda-python:3.12, unless present
    python -m ops.sandbox.container_runtime stop      stop the private dockerd, by verified PID
    python -m ops.sandbox.container_runtime status

The private engine lives in $SANDBOX_DOCKER_DIR (default .sandbox-docker/ in the repo, not in
git): data, socket, pid file, log. It is started so it changes as little of the machine as it
can: no iptables rules, no IP masquerading, no IP forwarding, so containers reach this machine
(the docker0 address) and nothing beyond it.

The image stands in for public.ecr.aws/lambda/python:3.12 where no registry is reachable: a
Debian minbase root file system (debootstrap, from the mirror and release apt already uses, with
exactly the libraries this Python links), the Python 3.12 the virtualenv was made from as
/var/lang, and the AWS Lambda runtime interface client (awslambdaric, PyPI) as /var/runtime.
SAM adds its emulator (RIE) on top. On a machine that can pull, none of this is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "local/lambda-python:3.12"
APT_PACKAGES = ("docker.io", "debootstrap", "socat")
DEFAULT_SOCKET = Path("/var/run/docker.sock")
BOOTSTRAP = """#!/bin/sh
# Lambda's runtime entry point (what RIE runs): the runtime interface client runs $_HANDLER
export PYTHONPATH=/var/runtime:/var/task:/opt/python
exec /var/lang/bin/python3.12 -m awslambdaric "$_HANDLER"
"""


# One private dockerd per machine: several checkouts (or test runs) starting their own would share
# and delete each other's docker0 bridge. The dockerd holds this lock (an inherited descriptor)
# for as long as it lives, and the file names its socket, so other checkouts use that engine.
LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
ENGINE_LOCK = LOCK_DIR / "dr-payment-dockerd.lock"
IMAGE_LOCK = LOCK_DIR / "dr-payment-lambda-image.lock"


class Unavailable(RuntimeError):
    """No container engine (or image) can be had here; the message says why and what to do."""


def runtime_dir() -> Path:
    configured = os.environ.get("SANDBOX_DOCKER_DIR")
    return Path(configured).resolve() if configured else ROOT / ".sandbox-docker"


def _say(message: str) -> None:
    print(f"container-runtime: {message}", file=sys.stderr, flush=True)


def docker_cli() -> str | None:
    return shutil.which("docker")


@dataclass(frozen=True)
class Engine:
    docker_host: str  # what DOCKER_HOST must be for the docker CLI and SAM
    ours: bool  # a private dockerd this module started (and `stop` stops)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.docker_host}

    def docker(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cli = docker_cli()
        if cli is None:
            raise Unavailable("no docker CLI on PATH")
        return subprocess.run(
            [cli, *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )

    def has_image(self, image: str = IMAGE) -> bool:
        return self.docker("image", "inspect", image).returncode == 0


def _answers(docker_host: str) -> bool:
    cli = docker_cli()
    if cli is None:
        return False
    try:
        result = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": docker_host},
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def _private_socket(directory: Path) -> Path:
    return directory / "docker.sock"


def _private_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / "dockerd.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        args = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # Ours only while it is a dockerd on our data folder (a pid file can outlive its process).
    ours = any(Path(a.decode()).name == "dockerd" for a in args[:1]) and any(
        a.decode() == f"--data-root={directory / 'data'}" for a in args
    )
    return pid if ours else None


def _locked_engine() -> str | None:
    """The socket of the private dockerd holding ENGINE_LOCK (another checkout's), if any."""
    try:
        with open(ENGINE_LOCK, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                return lock.read().strip() or None
            return None  # free: nobody runs one (released when this file closes)
    except OSError:
        return None


def find_engine() -> Engine | None:
    """An engine that answers now: DOCKER_HOST, the default socket, our private one, or the
    private one another checkout on this machine started."""
    configured = os.environ.get("DOCKER_HOST")
    if configured:
        return Engine(configured, ours=False) if _answers(configured) else None
    if DEFAULT_SOCKET.exists() and _answers(f"unix://{DEFAULT_SOCKET}"):
        return Engine(f"unix://{DEFAULT_SOCKET}", ours=False)
    directory = runtime_dir()
    private = f"unix://{_private_socket(directory)}"
    if _private_pid(directory) is not None and _answers(private):
        return Engine(private, ours=True)
    elsewhere = _locked_engine()
    if elsewhere and _answers(elsewhere):
        return Engine(elsewhere, ours=False)
    return None


def install() -> None:
    """docker.io, debootstrap and socat from Debian/Ubuntu's archive (root only)."""
    missing = [p for p, b in zip(APT_PACKAGES, ("dockerd", "debootstrap", "socat"), strict=True)
               if shutil.which(b) is None]  # fmt: skip
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(
            f"{', '.join(missing)} not installed and this is not root with apt-get: "
            f"sudo apt-get install -y --no-install-recommends {' '.join(APT_PACKAGES)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _say(f"installing {' '.join(missing)} (apt-get)")
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES],
        env=env,
        check=True,
        capture_output=True,
    )


def start(timeout: float = 60.0) -> Engine:
    """The engine to use, starting a private dockerd when none answers (root only)."""
    engine = find_engine()
    if engine is not None:
        return engine
    if os.environ.get("DOCKER_HOST"):
        raise Unavailable(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer")
    dockerd = shutil.which("dockerd")
    if dockerd is None or docker_cli() is None:
        raise Unavailable(
            "no Docker engine answers and dockerd is not installed "
            "(`make container-runtime` installs it as root; or install Docker / Docker Desktop)"
        )
    if os.geteuid() != 0:
        raise Unavailable("no Docker engine answers, and a private dockerd needs root")
    lock = open(ENGINE_LOCK, "a+")  # noqa: SIM115 - handed to dockerd, which keeps it
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        deadline = time.monotonic() + timeout  # another checkout's dockerd is starting
        while time.monotonic() < deadline:
            engine = find_engine()
            if engine is not None:
                return engine
            time.sleep(0.5)
        raise Unavailable(
            f"another private dockerd holds {ENGINE_LOCK} and does not answer"
        ) from None
    try:
        return _start_private(dockerd, lock, timeout)
    finally:
        lock.close()  # dockerd holds its own copy of the descriptor


def _start_private(dockerd: str, lock: Any, timeout: float) -> Engine:
    directory = runtime_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket = _private_socket(directory)
    exec_root = directory / "exec"
    if len(str(exec_root / "containerd" / "containerd-debug.sock")) > 100:  # sun_path limit
        exec_root = Path(tempfile.mkdtemp(prefix="dr-payment-docker-"))
    bridge_existed = Path("/sys/class/net/docker0").exists()
    lock.seek(0)
    lock.truncate()
    lock.write(f"unix://{socket}\n")
    lock.flush()
    with open(directory / "dockerd.log", "ab") as log:
        process = subprocess.Popen(
            [
                dockerd,
                f"--data-root={directory / 'data'}",
                f"--exec-root={exec_root}",
                f"--host=unix://{socket}",
                f"--pidfile={directory / 'dockerd.pid'}",
                # Touch the machine as little as possible: no firewall rules, no NAT, no
                # forwarding. Containers reach this machine's docker0 address and nothing else.
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(lock.fileno(),),  # the engine lock lives as long as dockerd
        )
    (directory / "bridge-created").write_text("no\n" if bridge_existed else "yes\n")
    engine = Engine(f"unix://{socket}", ours=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"dockerd exited ({process.returncode}); see {directory}/dockerd.log")
        if _answers(engine.docker_host):
            return engine
        time.sleep(0.2)
    raise Unavailable(f"dockerd did not answer in {timeout:.0f}s; see {directory}/dockerd.log")


def stop() -> str:
    """Stop the private dockerd (only ours, by its verified PID) and the bridge it created."""
    directory = runtime_dir()
    pid = _private_pid(directory)
    if pid is None:
        return "no private dockerd running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _private_pid(directory) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if _private_pid(directory) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    created = (directory / "bridge-created").read_text().strip() == "yes"
    if created and shutil.which("ip") and Path("/sys/class/net/docker0").exists():
        subprocess.run(["ip", "link", "delete", "docker0"], check=False, capture_output=True)
    return f"dockerd stopped (pid {pid})"


# -- the image ----------------------------------------------------------------------------------


def _os_release() -> dict[str, str]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value.strip().strip('"')
    return values


def _apt_mirror(codename: str) -> str:
    """The archive apt already uses for `codename` (deb822 .sources or one-line .list)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for path in sources:
        text = path.read_text()
        for stanza in text.split("\n\n"):
            fields = {
                k.strip(): v.strip()
                for k, _, v in (line.partition(":") for line in stanza.splitlines())
                if v
            }
            if codename in fields.get("Suites", "").split() and "URIs" in fields:
                return fields["URIs"].split()[0]
    lists = [Path("/etc/apt/sources.list"), *Path("/etc/apt").glob("sources.list.d/*.list")]
    for path in lists:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                parts = line.split()
                # deb [options] URI suite components...
                words = [p for p in parts if not p.startswith("[") and not p.endswith("]")]
                if len(words) >= 3 and words[0] == "deb" and words[2] == codename:
                    return words[1]
    raise Unavailable(f"no apt source for {codename} to debootstrap from")


def _linked_packages(prefix: Path) -> list[str]:
    """Debian packages owning the shared libraries this Python and its extension modules load."""
    dynload = (prefix / "lib" / "python3.12" / "lib-dynload").glob("*.so")
    # Lambda's image has no Tk: _tkinter would pull X11 and Tcl/Tk in for nothing.
    binaries = [prefix / "bin" / "python3.12", *(m for m in dynload if "_tkinter" not in m.name)]
    libraries: set[str] = set()
    for binary in binaries:
        output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for match in re.finditer(r"=> (/\S+)", output):
            path = match.group(1)
            if not path.startswith(str(prefix)):
                libraries.add(os.path.realpath(path))
    packages = {"ca-certificates"}
    for library in sorted(libraries):
        owner = subprocess.run(["dpkg", "-S", library], capture_output=True, text=True)
        if owner.returncode != 0:  # usrmerge: dpkg knows the /lib spelling
            owner = subprocess.run(
                ["dpkg", "-S", library.replace("/usr/lib/", "/lib/", 1)],
                capture_output=True,
                text=True,
            )
        if owner.returncode == 0:
            packages.add(owner.stdout.split(":", 1)[0].strip())
    return sorted(packages)


def build_image(engine: Engine, python_prefix: Path | None = None) -> None:
    """Build IMAGE into the engine (a few minutes, mostly debootstrap); a no-op when present."""
    if engine.has_image():
        return
    with open(IMAGE_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time on this machine
        if not engine.has_image():  # built by whoever held the lock before
            _build_image(engine, python_prefix)


def _build_image(engine: Engine, python_prefix: Path | None) -> None:
    prefix = Path(python_prefix or sys.base_prefix)
    if not (prefix / "bin" / "python3.12").exists():
        raise Unavailable(f"no Python 3.12 at {prefix} to put in the image (PY312 in Makefile)")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise Unavailable(f"building {IMAGE} needs root and debootstrap (make container-runtime)")
    release = _os_release()
    codename = release.get("VERSION_CODENAME", "")
    if not codename or not Path(f"/usr/share/debootstrap/scripts/{codename}").exists():
        raise Unavailable(f"debootstrap does not know this release ({codename or 'unknown'})")
    work = runtime_dir() / "image"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    started = time.monotonic()
    packages = _linked_packages(prefix)
    _say(f"debootstrap {codename} (minbase + {', '.join(packages)})")
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", codename,
         str(rootfs), _apt_mirror(codename)],
        check=True, capture_output=True,
    )  # fmt: skip
    _say(f"python {prefix} -> /var/lang")
    shutil.copytree(
        prefix,
        rootfs / "var" / "lang",
        symlinks=True,
        ignore=shutil.ignore_patterns(
            "test",
            "idle_test",
            "config-3.12-*",
            "site-packages",
            "tkinter",
            "_tkinter*",
            "idlelib",
            "turtledemo",
        ),
    )
    (rootfs / "var/lang/lib/python3.12/site-packages").mkdir()
    (rootfs / "etc/ld.so.conf.d/var-lang.conf").write_text("/var/lang/lib\n")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    subprocess.run([chroot, str(rootfs), "ldconfig"], check=True)
    _say("awslambdaric -> /var/runtime")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--only-binary=:all:",
         "--python-version", "3.12", "--implementation", "cp",
         "--target", str(rootfs / "var" / "runtime"), "awslambdaric"],
        check=True, capture_output=True,
    )  # fmt: skip
    bootstrap = rootfs / "var" / "runtime" / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)
    (rootfs / "var" / "task").mkdir(exist_ok=True)
    check = subprocess.run(
        [chroot, str(rootfs), "/var/lang/bin/python3.12", "-c",
         "import ssl, sqlite3, ctypes, awslambdaric; print('ok')"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "/var/runtime"},
        capture_output=True, text=True,
    )  # fmt: skip
    if check.stdout.strip() != "ok":
        raise Unavailable(f"the image's Python does not run: {check.stderr.strip()[-300:]}")
    _say(f"docker import {IMAGE}")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    cli = docker_cli()
    assert cli is not None
    imported = subprocess.run(
        [cli, "import",
         "-c", "ENV LANG=C.UTF-8 PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin "
               "LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime",
         "-c", "WORKDIR /var/task", "-", IMAGE],
        stdin=tar.stdout, env=engine.env(), capture_output=True, text=True,
    )  # fmt: skip
    tar.wait()
    if imported.returncode != 0:
        raise Unavailable(f"docker import failed: {imported.stderr.strip()}")
    shutil.rmtree(work, ignore_errors=True)  # the image holds it now
    _say(f"{IMAGE} built in {time.monotonic() - started:.0f}s")


def ensure() -> Engine:
    """Everything `sam local invoke` needs here: packages, engine, image (root on Debian)."""
    if find_engine() is None:
        install()
    engine = start()
    build_image(engine)
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.sandbox.container_runtime")
    parser.add_argument(
        "command", choices=["install", "start", "image", "ensure", "stop", "status"]
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            print(start().docker_host)
        elif args.command == "image":
            build_image(start())
        elif args.command == "ensure":
            print(ensure().docker_host)
        elif args.command == "stop":
            print(stop())
        else:
            engine = find_engine()
            print(json.dumps({
                "engine": engine.docker_host if engine else None,
                "private": bool(engine and engine.ours),
                "image": bool(engine and engine.has_image()),
            }))  # fmt: skip
    except Unavailable as exc:
        print(f"container-runtime: unavailable: {exc}", file=sys.stderr)
        return 3
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"")[-500:]
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        print(f"container-runtime: {exc.cmd[0]} failed: {text.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
