"""What every part of the drill shares: which regions are dead, the drill's clock, AWS clients
on the sandbox's endpoint (the front), and a log of timestamped events."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from ops.sandbox.state import DUMMY_CREDENTIALS

# Calls the drill makes as producers and probes: one attempt, short waits (the caller retries).
QUICK = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)
# Lambda's own invocations of a function: one attempt. A processor answers in well under a
# second here; a call that hangs this long met a region that died under it.
INVOKE = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
# Everything else (queues, tables, setup): a few retries.
STEADY = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10)


def iso(moment: float) -> str:
    """A time.time() value as drctl writes its report times (UTC, milliseconds)."""
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Clients:
    """boto3 clients on one endpoint (thread-safe to use; made under a lock)."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._made: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str, config: Config = STEADY) -> Any:
        key = (service, region, id(config))
        with self._lock:
            if key not in self._made:
                session = boto3.session.Session(
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    region_name=region,
                )
                self._made[key] = session.client(  # type: ignore[call-overload]
                    service, endpoint_url=self.endpoint_url, config=config
                )
            return self._made[key]


@dataclass
class Regions:
    """Which regions are down right now, as the harness (the AWS behind the front) sees it."""

    names: dict[str, str]  # role -> region
    _dead: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def dead(self, region: str) -> bool:
        with self._lock:
            return region in self._dead

    def set(self, region: str, *, dead: bool) -> None:
        with self._lock:
            (self._dead.add if dead else self._dead.discard)(region)
            self._changed.notify_all()

    def wait_alive(self, region: str, timeout: float) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: region not in self._dead, timeout)

    def other(self, region: str) -> str:
        return next(r for r in self.names.values() if r != region)


@dataclass
class Timeline:
    """Named moments of the drill (time.time()), in order."""

    moments: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, name: str, at: float | None = None, **facts: Any) -> float:
        moment = time.time() if at is None else at
        with self._lock:
            self.moments.append((name, moment, facts))
        return moment

    def first(self, name: str) -> float | None:
        with self._lock:
            return next((at for n, at, _ in self.moments if n == name), None)
