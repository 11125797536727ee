"""Can this region do its current job? The checks are data (`health_checks`: a name, a probe, the
roles it matters for, a judge), run by the runner the replication monitor also uses
(shared/checks.py): concurrently, each within its own timeout, all within one budget well under
Route 53's 2-second limit. The answer is kept a few seconds, so a burst of probes costs one round.

First the region-control item (this region's replica of the global table) says the role; then
the role's checks run:

- active: the ledger the functions write to (DB_HOST: in AWS the global writer endpoint) must
  take writes, and the documents bucket must answer;
- passive: this region's OWN cluster (its reader endpoint) must answer, with the replication
  heartbeat (the active region's replication monitor writes one a minute, migration 0004)
  younger than a threshold, and the documents bucket must answer. Nothing here depends on the
  other region: when the active region dies, the passive one stays healthy (ready to promote)
  until its copy is older than the threshold, which is then the truth about what it would lose.

With the role unknown (the item unreadable), the region is unhealthy and only the checks that
matter for either role run, to say what else is wrong.

No warm-up grace period: a cold start that misses the 2 s limit fails one probe, and Route 53's
FailureThreshold absorbs that; a grace period that answers HEALTHY unchecked would hide a region
that comes up broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.checks import Check, CheckRunner, Result, Role

AURORA_WRITER = "aurora-writer"
AURORA_REPLICA = "aurora-replica"
DYNAMODB = "dynamodb"
S3 = "s3"
READ_ONLY_WHILE_ACTIVE = "read-only while this region is active"
NO_HEARTBEAT = "no replication heartbeat on this region's reader"


class LedgerProbe(Protocol):
    def is_writable(self) -> bool:
        """Connects as the application user; True if writable. Raises when unreachable."""
        ...


class ReplicaProbe(Protocol):
    def heartbeat_age(self) -> float | None:
        """Seconds since the newest replication heartbeat this region's reader holds (None: it
        holds none). Raises when the reader is unreachable."""
        ...


class RegionGate(Protocol):
    def is_active(self) -> bool:
        """Reads the region-control item; True if it names this region. Raises if unreadable."""
        ...


class DocumentsBucket(Protocol):
    def head(self) -> None:
        """Raises unless the bucket exists and is reachable."""
        ...


def writable(value: object) -> str | None:
    return None if value else READ_ONLY_WHILE_ACTIVE


def replica_within(threshold_seconds: float) -> Callable[[object], str | None]:
    def judge(age: object) -> str | None:
        if not isinstance(age, int | float):
            return NO_HEARTBEAT
        if age > threshold_seconds:
            return f"replica copy {age:.0f}s old (threshold {threshold_seconds:g}s)"
        return None

    return judge


def health_checks(
    *,
    ledger: LedgerProbe,
    replica: ReplicaProbe,
    gate: RegionGate,
    documents: DocumentsBucket,
    replica_lag_threshold_seconds: float,
) -> tuple[Check, list[Check]]:
    """The role check, then every other check with the roles it matters for."""
    return Check(DYNAMODB, gate.is_active), [
        Check(AURORA_WRITER, ledger.is_writable, frozenset({Role.ACTIVE}), writable),
        Check(
            AURORA_REPLICA,
            replica.heartbeat_age,
            frozenset({Role.PASSIVE}),
            replica_within(replica_lag_threshold_seconds),
        ),
        Check(S3, documents.head),
    ]


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    checks: tuple[Result, ...]
    active: bool | None  # None: the region-control item could not be read
    fresh: bool = True  # False when served from the cache

    @property
    def role(self) -> str:
        return {True: "active", False: "passive", None: "unknown"}[self.active]

    def failed(self) -> list[Result]:
        return [check for check in self.checks if not check.ok]


class HealthService:
    def __init__(
        self,
        *,
        role_check: Check,
        checks: Sequence[Check],
        budget_seconds: float = 1.2,
        check_timeout_seconds: float = 1.0,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._role_check = role_check
        self._checks = list(checks)
        self._budget = budget_seconds
        self._runner = CheckRunner(timeout=min(check_timeout_seconds, budget_seconds))
        self._cache_seconds = cache_seconds
        self._clock = clock  # for the cache only: timeouts always use real time
        self._cached: tuple[float, HealthReport] | None = None

    def check(self) -> HealthReport:
        """The report, from the cache while it is younger than cache_seconds."""
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._cache_seconds:
            report = self._cached[1]
            return HealthReport(report.healthy, report.checks, report.active, fresh=False)
        report = self.run()
        self._cached = (now, report)
        return report

    def run(self) -> HealthReport:
        """One round of checks, never cached (the replication monitor runs one a minute)."""
        deadline = time.monotonic() + self._budget
        gate = self._runner.run([self._role_check], deadline=deadline)[self._role_check.name]
        active = bool(gate.value) if gate.ok else None
        role = None if active is None else (Role.ACTIVE if active else Role.PASSIVE)
        results = self._runner.run(
            [check for check in self._checks if check.matters_for(role)], deadline=deadline
        )
        checks = (gate, *results.values())
        return HealthReport(all(c.ok for c in checks), checks, active)
