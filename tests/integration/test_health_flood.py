"""200 concurrent requests to the health URL do not turn a healthy region UNHEALTHY.

What Route 53 evaluates is the CloudFront distribution in front of the function URL
(infra-global/dns.yaml): a cache of HealthEdgeCacheSeconds, errors included, requests collapsed,
and a URL that takes only CloudFront's signed requests (AWS_IAM + OAC). Here, on loopback: the
real health handler behind a stand-in for the Lambda URL capped at HealthReservedConcurrency
(template.yaml), a stand-in for the distribution with dns.yaml's numbers, and Route 53 checkers
with dns.yaml's search string and FailureThreshold (tests/integration/health_edge.py).

The second test is the reason for all this: the same flood on the URL as it was before (public,
nothing in front) throttles the probes into consecutive failures, i.e. a failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from health.checks import HealthService, health_checks
from health.handler import respond
from ops.drctl.template import load_template
from tests.conftest import ROOT
from tests.integration.health_edge import Checker, Edge, Flood, FunctionUrl

pytestmark = pytest.mark.integration

CLIENTS = 200
CHECKERS = 3
PROBE_ROUNDS = 15


def _defaults(path: str) -> dict[str, Any]:
    document = load_template(ROOT / path).document
    return {name: spec.get("Default") for name, spec in document["Parameters"].items()}


DNS = _defaults("infra-global/dns.yaml")
REGIONAL = _defaults("template.yaml")
HEALTH_ENV = load_template(ROOT / "template.yaml").document["Resources"]["HealthFunction"][
    "Properties"
]["Environment"]["Variables"]


class Dependency:
    """A healthy dependency that takes as long as a real in-region call (a few ms)."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds

    def is_writable(self) -> bool:
        time.sleep(self.seconds)
        return True

    def is_active(self) -> bool:
        time.sleep(self.seconds)
        return True

    def heartbeat_age(self) -> float:
        return 5.0

    def head(self) -> None:
        time.sleep(self.seconds)


@pytest.fixture
def function_url() -> Iterator[FunctionUrl]:
    dependency = Dependency()
    role_check, checks = health_checks(
        ledger=dependency,
        replica=dependency,
        gate=dependency,
        documents=dependency,
        replica_lag_threshold_seconds=float(REGIONAL["ReplicaLagThresholdSeconds"]),
    )
    service = HealthService(
        role_check=role_check,
        checks=checks,
        budget_seconds=float(HEALTH_ENV["HEALTH_BUDGET_SECONDS"]),
        check_timeout_seconds=float(HEALTH_ENV["HEALTH_CHECK_TIMEOUT_SECONDS"]),
        cache_seconds=float(HEALTH_ENV["HEALTH_CACHE_SECONDS"]),
    )
    url = FunctionUrl(
        lambda event: respond(event, None, service=service),
        concurrency=int(REGIONAL["HealthReservedConcurrency"]),
    )
    yield url
    url.close()


def checkers(url: str) -> list[Checker]:
    return [
        Checker(
            url + DNS["HealthCheckPath"],
            DNS["HealthCheckSearchString"],
            int(DNS["HealthCheckFailureThreshold"]),
        )
        for _ in range(CHECKERS)
    ]


def probe_during_flood(url: str, probers: list[Checker]) -> Flood:
    """Every checker probes `url` PROBE_ROUNDS times while CLIENTS clients flood it (far more
    often than Route 53's 10 s: a stricter test)."""
    with Flood(url + DNS["HealthCheckPath"], CLIENTS) as flood:
        for _ in range(PROBE_ROUNDS):
            threads = [threading.Thread(target=c.probe) for c in probers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(0.05)
    return flood


def test_a_flood_through_the_edge_leaves_a_healthy_region_healthy(
    function_url: FunctionUrl,
) -> None:
    edge = Edge(function_url.url, ttl=float(DNS["HealthEdgeCacheSeconds"]))
    probers = checkers(edge.url)
    try:
        flood = probe_during_flood(edge.url, probers)
    finally:
        edge.close()

    sent = sum(flood.sent)
    print(
        f"flood via the edge: {sent} requests from {CLIENTS} clients, "
        f"{edge.origin_requests} reached the function ({function_url.throttled} throttled); "
        f"probes {[c.probes for c in probers]}, failures {[c.failures for c in probers]}"
    )
    assert sent >= CLIENTS  # every client really sent
    assert all(not c.ever_unhealthy for c in probers)
    assert all(c.failures == 0 for c in probers)  # not one failed probe
    assert function_url.throttled == 0
    assert edge.origin_requests < 10  # the cache answered the flood, not the function


def test_the_same_flood_on_the_bare_url_would_fail_the_region_over(
    function_url: FunctionUrl,
) -> None:
    probers = checkers(function_url.url)

    flood = probe_during_flood(function_url.url, probers)

    print(
        f"flood on the bare URL: {sum(flood.sent)} requests, {function_url.throttled} throttled; "
        f"probes {[c.probes for c in probers]}, failures {[c.failures for c in probers]}, "
        f"longest failure streaks {[c.worst_streak for c in probers]}"
    )
    assert function_url.throttled > 0
    assert any(c.ever_unhealthy for c in probers)
