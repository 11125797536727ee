"""Can this region serve its role? Aurora, DynamoDB and S3 are checked concurrently, each within its
own timeout and all within one budget well under Route 53's 2-second limit, and the answer is kept
for a few seconds so a burst of health checkers costs one round of checks, not one per probe.

The role decides what Aurora must answer. The active region (the region-control item names it)
must reach a *writable* ledger; a passive region is healthy when it can connect and read, since
that is all it does until promoted (it parks events; `drctl failover` promotes it). So the endpoint
reports whether this region can do its current job, and a passive region stays eligible for
failover while the active one is fenced read-only.

No warm-up grace period: a cold start that misses the 2 s limit fails one probe, and Route 53's
FailureThreshold (3 consecutive failures, infra-global/dns.yaml) already absorbs that; a grace
period that answers HEALTHY unchecked would hide a region that comes up broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

AURORA = "aurora"
DYNAMODB = "dynamodb"
S3 = "s3"
READ_ONLY_WHILE_ACTIVE = "read-only while this region is active"


class LedgerProbe(Protocol):
    def is_writable(self) -> bool:
        """Connects as the application user; True if writable. Raises when unreachable."""
        ...


class RegionGate(Protocol):
    def is_active(self) -> bool:
        """Reads the region-control item; True if it names this region. Raises if unreadable."""
        ...


class DocumentsBucket(Protocol):
    def head(self) -> None:
        """Raises unless the bucket exists and is reachable."""
        ...


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    seconds: float
    detail: str = ""  # why it failed: for logs only, never for the public body


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    checks: tuple[CheckResult, ...]
    active: bool | None  # None: the region-control item could not be read
    fresh: bool = True  # False when served from the cache

    @property
    def role(self) -> str:
        return {True: "active", False: "passive", None: "unknown"}[self.active]

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.ok]


@dataclass(frozen=True)
class _Answer:
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


def _timed(probe: Callable[[], Any]) -> _Answer:
    started = time.monotonic()
    try:
        value = probe()
    except Exception as exc:  # noqa: BLE001 - whatever a check raises, the check failed
        return _Answer(error=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - started)
    return _Answer(value=value, seconds=time.monotonic() - started)


class HealthService:
    def __init__(
        self,
        *,
        ledger: LedgerProbe,
        region_gate: RegionGate,
        documents: DocumentsBucket,
        budget_seconds: float = 1.2,
        check_timeout_seconds: float = 1.0,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes: dict[str, Callable[[], Any]] = {
            AURORA: ledger.is_writable,
            DYNAMODB: region_gate.is_active,
            S3: documents.head,
        }
        self._budget = budget_seconds
        self._check_timeout = min(check_timeout_seconds, budget_seconds)
        self._cache_seconds = cache_seconds
        self._clock = clock  # for the cache only: timeouts always use real time
        self._cached: tuple[float, HealthReport] | None = None

    def check(self) -> HealthReport:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._cache_seconds:
            report = self._cached[1]
            return HealthReport(report.healthy, report.checks, report.active, fresh=False)
        report = self._run()
        self._cached = (now, report)
        return report

    def _run(self) -> HealthReport:
        # A pool per round: a check that hangs past its timeout keeps its thread (Python cannot
        # stop it) until its own socket timeout ends it, and must not hold up the next round.
        pool = ThreadPoolExecutor(max_workers=len(self._probes), thread_name_prefix="health")
        try:
            started = time.monotonic()
            futures = {name: pool.submit(_timed, probe) for name, probe in self._probes.items()}
            answers = {name: self._collect(future, started) for name, future in futures.items()}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return self._judge(answers)

    def _collect(self, future: Future[_Answer], started: float) -> _Answer:
        try:
            return future.result(timeout=max(0.0, started + self._check_timeout - time.monotonic()))
        except FutureTimeout:
            return _Answer(
                error=f"no answer within {self._check_timeout:g}s",
                seconds=time.monotonic() - started,
            )

    @staticmethod
    def _judge(answers: dict[str, _Answer]) -> HealthReport:
        gate = answers[DYNAMODB]
        active = None if gate.error is not None else bool(gate.value)
        results = []
        for name, answer in answers.items():
            if answer.error is not None:
                results.append(CheckResult(name, False, answer.seconds, answer.error))
            elif name == AURORA and active and not answer.value:
                results.append(CheckResult(name, False, answer.seconds, READ_ONLY_WHILE_ACTIVE))
            else:
                results.append(CheckResult(name, True, answer.seconds))
        return HealthReport(all(r.ok for r in results), tuple(results), active)
