"""Make the sandbox reachable from a container on this machine, and from nowhere else.

The servers themselves listen on 127.0.0.1 only. On Linux a container on Docker's default bridge
reaches the host at the bridge's address (docker0, what `--add-host
host.docker.internal:host-gateway` resolves to), so `up` starts one socat forwarder per server,
listening on that address and the same port, connecting to 127.0.0.1. Nothing else is accepted:
SANDBOX_BIND names either nothing, or an address of a local Docker bridge interface; anything
routable is refused. MariaDB's root user stays on the unix socket (forwarded connections are TCP
and arrive as the app user or not at all). Docker Desktop (macOS, Windows) forwards
host.docker.internal to the host's loopback by itself: there is no docker0 and nothing to do.

    SANDBOX_BIND unset or "auto"   forward when a docker0 interface exists and socat is installed
    SANDBOX_BIND=off               never forward
    SANDBOX_BIND=docker            forward to docker0, fail if that cannot be done
    SANDBOX_BIND=<address>         forward on that address: must be a local Docker bridge's
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

from ops.sandbox.state import LOOPBACK, Process, port_answers

DEFAULT_BRIDGE = "docker0"
SOCAT_PROGRAMS = ("socat",)
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


class BridgeRefused(RuntimeError):
    pass


def interface_address(name: str) -> str | None:
    """The IPv4 address of a local network interface, or None (absent, down, or not Linux)."""
    try:
        import fcntl  # not on Windows

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(
                sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
            )
        return socket.inet_ntoa(packed[20:24])
    except (OSError, ImportError, ValueError):
        return None


def docker_bridges() -> dict[str, str]:
    """Docker's bridge interfaces on this machine (docker0 and user networks br-*) by address."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return {}
    found = {}
    for name in names:
        if name == DEFAULT_BRIDGE or name.startswith("br-"):
            address = interface_address(name)
            if address:
                found[address] = name
    return found


def bind_address(setting: str | None = None) -> str | None:
    """The address to forward on, from SANDBOX_BIND (see the module doc); None: loopback only."""
    setting = (os.environ.get("SANDBOX_BIND", "") if setting is None else setting).strip()
    if setting in ("", "auto"):
        address = interface_address(DEFAULT_BRIDGE)
        return address if address and shutil.which("socat") else None
    if setting in ("off", "none", "loopback"):
        return None
    if setting == "docker":
        address = interface_address(DEFAULT_BRIDGE)
        if address is None:
            raise BridgeRefused(
                "SANDBOX_BIND=docker: no docker0 interface (is the Docker engine running?)"
            )
        return address
    try:
        ipaddress.ip_address(setting)
    except ValueError:
        raise BridgeRefused(
            f"SANDBOX_BIND={setting!r}: use auto, off, docker or a Docker bridge's address"
        ) from None
    if ipaddress.ip_address(setting).is_loopback:
        return None  # the servers are on loopback already
    bridges = docker_bridges()
    if setting not in bridges:
        known = ", ".join(f"{a} ({n})" for a, n in bridges.items()) or "none here"
        raise BridgeRefused(
            f"SANDBOX_BIND={setting}: refused, the sandbox is never exposed beyond this machine; "
            f"it listens only on loopback and a local Docker bridge (bridges: {known})"
        )
    return setting


def requested() -> bool:
    """SANDBOX_BIND names the bridge explicitly (not unset/auto): failing to forward is fatal."""
    return os.environ.get("SANDBOX_BIND", "").strip() not in ("", "auto")


def start_forwarder(name: str, address: str, port: int, log: Path) -> Process:
    """socat on address:port -> 127.0.0.1:port, detached like the servers it forwards to."""
    socat = shutil.which("socat")
    if socat is None:
        raise BridgeRefused(
            "socat is not installed: apt-get install -y socat (or SANDBOX_BIND=off)"
        )
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            [
                socat,
                f"TCP-LISTEN:{port},bind={address},reuseaddr,fork",
                f"TCP:{LOOPBACK}:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = Process(name, popen.pid, port, SOCAT_PROGRAMS, host=address)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise BridgeRefused(f"socat could not listen on {address}:{port}; see {log}")
        if port_answers(port, address):
            return process
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        popen.kill()
    raise BridgeRefused(f"socat did not listen on {address}:{port} in 5s; see {log}")
