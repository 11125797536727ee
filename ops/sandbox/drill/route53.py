"""Route 53 health checks on each region's HealthFunction, as infra-global/dns.yaml configures
them (HTTPS_STR_MATCH every RequestInterval seconds; FailureThreshold consecutive failures make
it unhealthy, as many successes healthy again). moto stores health checks but never probes.

A probe is the health function's Function URL answer (invoked through the sandbox, a GET as
Route 53 sends it): healthy when the status is 2xx/3xx and the body holds the search string
within Route 53's 2-second reply limit. A dead region does not answer: the probe fails.

The drill runs Route 53's schedule `speedup` times faster than real time (interval 30 s -> 1 s
at 30x), so a failover drill does not wait 90 s for detection; a probe still has Route 53's
real 2 s to answer. Probes fire on a fixed schedule (a hanging probe does not delay the next),
one checker per region: Route 53's many checkers agree on a dead endpoint, so one stands for
them. Detection in Route 53's own time is then exact: (when the deciding probe was sent - the
failure) x speedup + how long that probe took.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.config import Config

from ops.drctl.functions import HEALTH_PROBE
from ops.sandbox.drill.harness import Clients, Timeline
from ops.sandbox.resources import load_template
from shared import names

ROOT = Path(__file__).resolve().parents[3]
DNS_TEMPLATE = ROOT / "infra-global" / "dns.yaml"
PLAN = ROOT / "infra-global" / "stacks.yaml"
REPLY_LIMIT_SECONDS = 2.0  # Route 53 counts a reply later than this as a failure


@dataclass(frozen=True)
class HealthCheckConfig:
    interval_seconds: int
    failure_threshold: int
    search_string: str
    source: str

    @property
    def detection_bound_seconds(self) -> float:
        """interval x threshold: how long Route 53 takes to call a dead endpoint unhealthy."""
        return float(self.interval_seconds * self.failure_threshold)

    @classmethod
    def from_templates(cls, dns: Path = DNS_TEMPLATE, plan: Path = PLAN) -> HealthCheckConfig:
        """dns.yaml's defaults, overridden by what the deploy plan passes the dns stack."""
        parameters = load_template(dns)["Parameters"]
        values = {name: spec.get("Default") for name, spec in parameters.items()}
        source = str(dns.relative_to(ROOT))
        for stack in (yaml.safe_load(plan.read_text()) or {}).get("stacks", []):
            if stack.get("template") == dns.name:
                given = {k: v for k, v in (stack.get("parameters") or {}).items() if k in values}
                if given:
                    values.update(given)
                    source += f" + {plan.relative_to(ROOT)}"
        return cls(
            interval_seconds=int(values["HealthCheckInterval"]),
            failure_threshold=int(values["HealthCheckFailureThreshold"]),
            search_string=str(values["HealthCheckSearchString"]),
            source=source,
        )


@dataclass(frozen=True)
class Change:
    at: float  # when the state changed (time.time())
    healthy: bool
    probe_sent_at: float  # the deciding probe
    probe_seconds: float


@dataclass
class _Check:
    region: str
    function: str
    healthy: bool = True
    failures: int = 0
    successes: int = 0
    probes: int = 0
    changes: list[Change] = field(default_factory=list)


class HealthChecks:
    def __init__(
        self,
        clients: Clients,
        config: HealthCheckConfig,
        regions_by_role: dict[str, str],
        env: str,
        *,
        speedup: float,
        timeline: Timeline,
    ) -> None:
        self.config = config
        self.speedup = speedup
        self.interval = config.interval_seconds / speedup
        self.reply_limit = REPLY_LIMIT_SECONDS
        self._client_config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=self.reply_limit,
            read_timeout=self.reply_limit,
        )
        self._clients = clients
        self._timeline = timeline
        self._checks = {
            region: _Check(region, names.health_function(role, env))
            for role, region in regions_by_role.items()
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def healthy(self, region: str) -> bool:
        with self._lock:
            return self._checks[region].healthy

    def wait_healthy(self, region: str, timeout: float) -> bool:
        """Until Route 53 sees `region` healthy now (False after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not self.healthy(region):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def changes(self, region: str) -> list[Change]:
        with self._lock:
            return list(self._checks[region].changes)

    def start(self) -> HealthChecks:
        for region in self._checks:
            thread = threading.Thread(
                target=self._schedule, args=(region,), name=f"route53-{region}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _schedule(self, region: str) -> None:
        next_at = time.monotonic()
        slot = time.time()
        while not self._stop.is_set():
            # The probe belongs to its slot on Route 53's schedule, however late a busy machine
            # starts its thread.
            threading.Thread(target=self._probe, args=(region, slot), daemon=True).start()
            next_at += self.interval
            slot += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _probe(self, region: str, sent_at: float) -> None:
        check = self._checks[region]
        started = time.monotonic()
        ok, why = False, "no answer"
        try:
            answer = self._clients.get("lambda", region, self._client_config).invoke(
                FunctionName=check.function,
                InvocationType="RequestResponse",
                Payload=json.dumps(HEALTH_PROBE | {"rawPath": "/"}).encode(),
            )
            payload: Any = json.loads(answer["Payload"].read() or b"{}")
            status = int(payload.get("statusCode", 0)) if isinstance(payload, dict) else 0
            body = str(payload.get("body", "")) if isinstance(payload, dict) else ""
            ok = (
                not answer.get("FunctionError")
                and 200 <= status < 400
                and self.config.search_string in body[:5120]
                and time.monotonic() - started <= self.reply_limit
            )
            why = f"HTTP {status} {body[:40]!r}"
        except Exception as exc:  # noqa: BLE001 - no answer in time is a failed probe
            ok, why = False, f"no answer ({type(exc).__name__})"
        self._record(check, ok, sent_at, time.monotonic() - started, why)

    def _record(
        self, check: _Check, ok: bool, sent_at: float, seconds: float, why: str = ""
    ) -> None:
        with self._lock:
            check.probes += 1
            if ok:
                check.successes, check.failures = check.successes + 1, 0
            else:
                check.failures, check.successes = check.failures + 1, 0
            flipped = (check.healthy and check.failures >= self.config.failure_threshold) or (
                not check.healthy and check.successes >= self.config.failure_threshold
            )
            if flipped:
                check.healthy = not check.healthy
                moment = time.time()
                check.changes.append(Change(moment, check.healthy, sent_at, seconds))
        if flipped:
            state = "HEALTHY" if check.healthy else "UNHEALTHY"
            # The deciding probe's answer: why a region flipped, in the report's timeline.
            self._timeline.mark(
                f"route53 {check.region} {state}", moment, probe=why, seconds=round(seconds, 3)
            )

    def wait_for(self, region: str, healthy: bool, after: float, timeout: float) -> Change | None:
        """The change of `region` to `healthy` at or after `after` (time.time()); also when it
        was already in that state (then the change before), or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            changes = self.changes(region)
            for change in changes:
                if change.healthy is healthy and change.at >= after:
                    return change
            if changes and changes[-1].healthy is healthy:
                return changes[-1]
            time.sleep(0.05)
        return None
