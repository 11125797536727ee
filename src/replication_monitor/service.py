"""The replication monitor's run: which region is active, then every probe that matters for this
region's role, concurrently (the shared check runner), then the overall RPO estimate.

A probe is data (probes.py: a name, the roles it matters for, the figures it yields, how it
measures them). A probe that raises or gives no answer in time yields its figures as MISSING
(value None, with the reason): a figure is never 0 because it could not be read, and
FiguresMissing counts the missing ones, so an alarm can tell "no lag" from "no data".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from shared import metric_names
from shared.checks import EVERY_ROLE, Check, CheckRunner, Role
from shared.metric_names import Store
from shared.region_control import RegionControl


class ControlReader(Protocol):
    def read(self) -> RegionControl | None:
        """This region's replica of the region-control item (None: there is none)."""
        ...


@dataclass(frozen=True)
class Figure:
    metric: str  # a metric_names.SPECS name
    value: float | None  # None: missing (not measured), never 0 for "unknown"
    store: str | None = None
    target_region: str | None = None
    region: str | None = None
    note: str = ""  # how it was measured, or why it is missing: logs and the invoke output

    def __post_init__(self) -> None:
        spec = metric_names.SPECS[self.metric]  # KeyError: not a metric we publish
        given = {
            metric_names.DIMENSION_STORE: self.store,
            metric_names.DIMENSION_TARGET_REGION: self.target_region,
            metric_names.DIMENSION_REGION: self.region,
        }
        for name, value in given.items():
            if (name in spec.dimensions) != (value is not None):
                raise ValueError(f"{self.metric}: dimension {name} must be given exactly when used")
        if self.store is not None:
            Store(self.store)

    def dimensions(self, env: str) -> dict[str, str]:
        values = {
            metric_names.DIMENSION_ENVIRONMENT: env,
            metric_names.DIMENSION_STORE: self.store,
            metric_names.DIMENSION_TARGET_REGION: self.target_region,
            metric_names.DIMENSION_REGION: self.region,
        }
        spec = metric_names.SPECS[self.metric]
        return {name: str(values[name]) for name in spec.dimensions}

    @property
    def unit(self) -> str:
        return metric_names.SPECS[self.metric].unit

    def missing(self, why: str) -> Figure:
        return replace(self, value=None, note=why)

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"metric": self.metric}
        for key in ("store", "target_region", "region"):
            if getattr(self, key) is not None:
                shown[key] = getattr(self, key)
        shown["value"] = None if self.value is None else round(self.value, 3)
        if self.note:
            shown["note"] = self.note
        return shown


@dataclass(frozen=True)
class Situation:
    """What a probe knows when it runs."""

    region: str
    role: Role | None
    active_region: str | None  # whose canaries a passive region looks for
    deadline: float  # time.monotonic() by which every probe must have answered


@dataclass(frozen=True)
class Probe:
    name: str
    expects: tuple[Figure, ...]  # what it yields, values None: what is missing if it fails
    measure: Callable[[Situation], list[Figure]]
    roles: frozenset[Role] = EVERY_ROLE
    timeout: float | None = None  # its own limit (a canary waits for replication)
    # Runs before the others, on its own: a verdict with a tight budget (the health checks'
    # 1.2 s) must not be skewed by the monitor's own concurrent work.
    alone: bool = False


@dataclass(frozen=True)
class MonitorReport:
    region: str
    role: Role | None
    active_region: str | None
    figures: tuple[Figure, ...]
    probes: dict[str, str] = field(default_factory=dict)  # probe -> "ok" or why it failed

    def missing(self) -> list[Figure]:
        return [f for f in self.figures if f.value is None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "role": self.role.value if self.role else "unknown",
            "active_region": self.active_region,
            "published": [f.as_dict() for f in self.figures if f.value is not None],
            "missing": [f.as_dict() for f in self.missing()],
            "probes": self.probes,
        }


class ReplicationMonitor:
    def __init__(
        self,
        *,
        region: str,
        control: ControlReader,
        probes: Sequence[Probe],
        check_timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._control = control
        self._probes = list(probes)
        self._runner = CheckRunner(timeout=check_timeout_seconds, clock=clock)
        self._clock = clock

    def run(self, *, seconds: float) -> MonitorReport:
        """One round, all within `seconds` from now."""
        deadline = self._clock() + seconds
        control, why = self._read_control(deadline)
        active_region = control.active_region if control and not control.fenced else None
        role = (
            None
            if control is None
            else Role.ACTIVE
            if control.names(self._region)
            else Role.PASSIVE
        )
        situation = Situation(self._region, role, active_region, deadline)
        wanted = [p for p in self._probes if (role in p.roles if role else p.roles == EVERY_ROLE)]
        results = {}
        for batch in ([p for p in wanted if p.alone], [p for p in wanted if not p.alone]):
            checks = [
                Check(p.name, partial(p.measure, situation), p.roles, timeout=p.timeout)
                for p in batch
            ]
            results.update(self._runner.run(checks, deadline=deadline))
        figures: list[Figure] = []
        states: dict[str, str] = {"region-control": why or "ok"}
        for probe in wanted:
            result = results[probe.name]
            if result.ok and isinstance(result.value, list):
                figures.extend(result.value)
                states[probe.name] = "ok"
            else:
                figures.extend(f.missing(result.detail) for f in probe.expects)
                states[probe.name] = result.detail or "no figures"
        figures.extend(rpo_estimates(figures, situation))
        watched = [f for f in figures if f.metric in metric_names.WATCHED_FIGURES]
        figures.append(
            Figure(
                metric_names.FIGURES_MISSING,
                float(sum(1 for f in watched if f.value is None)),
                region=self._region,
                note=", ".join(f"{f.metric}/{f.store}" for f in watched if f.value is None),
            )
        )
        return MonitorReport(self._region, role, active_region, tuple(figures), states)

    def _read_control(self, deadline: float) -> tuple[RegionControl | None, str]:
        check = Check("region-control", self._control.read)
        result = self._runner.run([check], deadline=deadline)["region-control"]
        return (result.value, "") if result.ok else (None, result.detail)


def rpo_estimates(figures: Sequence[Figure], situation: Situation) -> list[Figure]:
    """Per target region measured here: the largest lag figure of the run (seconds), published
    only when the ledger's own lag was measured (without it an estimate would understate)."""
    targets = sorted(
        {
            f.target_region
            for f in figures
            if f.metric in metric_names.LAG_FIGURES and f.target_region
        }
    )
    estimates = []
    for target in targets:
        lags = [
            f for f in figures if f.metric in metric_names.LAG_FIGURES and f.target_region == target
        ]
        ledger = [f.value for f in lags if f.store == Store.AURORA and f.value is not None]
        present = [f.value for f in lags if f.value is not None]
        if ledger:
            worst = max(present)
            stores = sorted({f.store or "" for f in lags if f.value == worst})
            note = f"largest lag figure ({', '.join(stores)})"
            estimates.append(
                Figure(metric_names.RPO_ESTIMATE, worst, target_region=target, note=note)
            )
        else:
            estimates.append(
                Figure(
                    metric_names.RPO_ESTIMATE,
                    None,
                    target_region=target,
                    note="no ledger lag figure this run",
                )
            )
    return estimates
