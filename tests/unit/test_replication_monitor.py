"""The replication monitor with fakes: what each role measures and writes, the end-to-end wait
and its fallback, missing figures that stay missing, the RPO estimate, and what is published."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from replication_monitor.handler import publish
from replication_monitor.probes import Config, Ports, probes
from replication_monitor.service import Figure, MonitorReport, ReplicationMonitor
from shared import metric_names as m
from shared.adapters.rds import GlobalClusterState, GlobalMember
from shared.checks import Role
from shared.errors import LedgerUnavailable, MonitoringUnavailable
from shared.region_control import RegionControl

HERE, PEER = "us-east-1", "us-west-2"


class Clock:
    """Monotonic time that moves only when the code sleeps (starts at the real value, so the
    monitor's deadline, taken from the real clock, stays comparable)."""

    def __init__(self) -> None:
        self.now = time.monotonic()
        self.wall = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


@dataclass
class LedgerPair:
    """The writer and the peer's reader: a heartbeat appears there `lag` seconds after COMMIT
    (None: never, replication stopped); the peer already holds one `old_age` seconds old."""

    clock: Clock
    lag: float | None = 0.0
    old_age: float | None = 75.0
    beats: list[tuple[str, str, float]] = field(default_factory=list)
    own_age: float | None = 30.0

    # the writer
    def beat(self, origin_region: str) -> str:
        token = f"t{len(self.beats)}"
        self.beats.append((origin_region, token, self.clock()))
        return token

    # the peer's reader
    @contextmanager
    def watch(self) -> Iterator[LedgerPair]:
        yield self

    def has(self, origin_region: str, token: str) -> bool:
        for origin, written, at in self.beats:
            if (origin, written) == (origin_region, token) and self.lag is not None:
                return self.clock() >= at + self.lag
        return False

    def age(self, origin_region: str | None = None) -> float | None:
        if self.old_age is None:
            return None
        start = self.beats[0][2] if self.beats else self.clock()
        return self.old_age + (self.clock() - start)

    # this region's reader
    def heartbeat_age(self, origin_region: str | None = None) -> float | None:
        return self.own_age


@dataclass
class Canary:
    written: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=lambda: {PEER: "ACTIVE"})
    broken: bool = False

    def beat(self, origin_region: str, written_at: float) -> None:
        if self.broken:
            raise MonitoringUnavailable("canary not written: AccessDenied")
        self.written[origin_region] = written_at

    def written_at(self, origin_region: str) -> float | None:
        return self.written.get(origin_region)

    def replicas(self) -> dict[str, str]:
        return self.statuses


@dataclass
class Metrics:
    values: dict[str, float] = field(default_factory=dict)  # by AWS metric name
    asked: list[str] = field(default_factory=list)

    def latest(self, queries: Any, *, window_seconds: int, period: int = 60) -> list[Any]:
        self.asked += [q.name for q in queries]
        return [self.values.get(q.name) for q in queries]


@dataclass
class Cluster:
    state: GlobalClusterState | None = field(
        default_factory=lambda: GlobalClusterState(
            "available",
            (GlobalMember(HERE, "dr-payment-primary-test", True), GlobalMember(PEER, "s", False)),
        )
    )

    def describe(self) -> GlobalClusterState | None:
        return self.state


@dataclass
class Health:
    healthy: bool = True
    active: bool | None = True

    def run(self) -> Any:
        outer = self

        class Report:
            healthy = outer.healthy
            active = outer.active
            role = {True: "active", False: "passive", None: "unknown"}[outer.active]

            @staticmethod
            def failed() -> list[Any]:
                return []

        return Report()


@dataclass
class Control:
    active_region: str | None = HERE
    error: Exception | None = None

    def read(self) -> RegionControl | None:
        if self.error:
            raise self.error
        return None if self.active_region is None else RegionControl(self.active_region, 3)


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    control: Control = field(default_factory=Control)
    sessions: Canary = field(default_factory=Canary)
    documents: Canary = field(default_factory=Canary)
    metrics: Metrics = field(default_factory=Metrics)
    cluster: Cluster = field(default_factory=Cluster)
    health: Health = field(default_factory=Health)
    ledger: LedgerPair | None = None
    region_role: str = "primary"

    def __post_init__(self) -> None:
        self.ledger = self.ledger or LedgerPair(self.clock)

    def monitor(self, *, wait: float = 40.0) -> ReplicationMonitor:
        assert self.ledger is not None
        ports = Ports(
            writer=self.ledger,
            own_reader=self.ledger,
            peer_reader=self.ledger,
            sessions=self.sessions,
            documents=self.documents,
            metrics=self.metrics,
            global_cluster=self.cluster,
            health=self.health,
        )
        config = Config(
            env="test",
            region=HERE,
            peer_region=PEER,
            region_role=self.region_role,
            cluster="dr-payment-primary-test",
            sessions_table="dr-payment-sessions-test",
            docs_bucket="docs-here",
            peer_docs_bucket="docs-peer",
            canary_wait_seconds=wait,
            canary_poll_seconds=0.05,
            metric_window_seconds=300,
            check_timeout_seconds=5,
            wall=lambda: self.clock.wall,
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        return ReplicationMonitor(
            region=HERE, control=self.control, probes=probes(ports, config), check_timeout_seconds=5
        )


def figure(report: Any, metric: str, store: str | None = None) -> Figure:
    [found] = [f for f in report.figures if f.metric == metric and f.store == store]
    return found


# -- the ledger, end to end -----------------------------------------------------------------------


@pytest.mark.parametrize("lag", [0.0, 5.0, 30.0])
def test_the_active_region_measures_the_ledgers_lag_into_the_peer_end_to_end(lag: float) -> None:
    world = World()
    assert world.ledger is not None
    world.ledger.lag = lag

    report = world.monitor().run(seconds=50)

    canary = figure(report, m.CANARY_LAG, "aurora")
    assert canary.target_region == PEER
    assert canary.value == pytest.approx(lag, abs=0.051)  # one poll interval
    assert canary.note == "heartbeat seen on the peer's reader"
    assert figure(report, m.RPO_ESTIMATE).value == pytest.approx(lag, abs=0.051)


def test_with_replication_stopped_the_figure_is_the_age_of_the_newest_heartbeat_and_grows() -> None:
    world = World()
    assert world.ledger is not None
    world.ledger.lag = None  # nothing arrives any more
    monitor = world.monitor(wait=10)

    first = figure(monitor.run(seconds=50), m.CANARY_LAG, "aurora")
    world.ledger.old_age = (world.ledger.old_age or 0) + 60  # the next run, a minute later
    second = figure(monitor.run(seconds=50), m.CANARY_LAG, "aurora")

    assert first.value is not None and first.value > 75 + 9.9  # the old one's age after the wait
    assert second.value is not None and second.value > first.value + 50
    assert "not seen within 10.0s" in first.note


def test_no_heartbeat_at_all_on_the_peer_is_missing_not_zero() -> None:
    world = World()
    assert world.ledger is not None
    world.ledger.lag, world.ledger.old_age = None, None

    report = world.monitor(wait=1).run(seconds=50)

    assert figure(report, m.CANARY_LAG, "aurora").value is None
    assert figure(report, m.RPO_ESTIMATE).value is None  # no ledger figure: no estimate


# -- what each role does ------------------------------------------------------------------------


def test_the_active_region_writes_every_canary_and_reads_the_source_side_metrics() -> None:
    world = World()
    world.metrics.values = {"ReplicationLatency": 850.0}  # DynamoDB: ms (S3: seconds)

    report = world.monitor().run(seconds=50)

    assert report.role is Role.ACTIVE
    assert HERE in world.sessions.written and HERE in world.documents.written
    dynamodb = figure(report, m.REPLICATION_LAG, "dynamodb")
    assert (dynamodb.value, dynamodb.target_region) == (0.85, PEER)
    assert figure(report, m.REPLICATION_LAG, "s3").value == 850.0
    assert "AuroraGlobalDBReplicationLag" not in world.metrics.asked  # the source has none
    assert not [f for f in report.figures if f.metric == m.CANARY_AGE]


def test_only_the_replicating_bucket_reads_s3_replication_metrics() -> None:
    world = World(region_role="secondary")

    world.monitor().run(seconds=50)

    assert "OperationsFailedReplication" not in world.metrics.asked


def test_a_passive_region_writes_nothing_and_reads_its_own_copies() -> None:
    world = World(control=Control(active_region=PEER))
    assert world.ledger is not None
    world.sessions.written[PEER] = world.clock.wall - 42
    world.metrics.values = {"AuroraGlobalDBReplicationLag": 120.0, "AuroraGlobalDBRPOLag": 900.0}

    report = world.monitor().run(seconds=50)

    assert report.role is Role.PASSIVE
    assert world.ledger.beats == [] and world.sessions.written.keys() == {PEER}
    assert world.documents.written == {}
    assert figure(report, m.CANARY_AGE, "aurora").value == 30.0
    assert figure(report, m.CANARY_AGE, "dynamodb").value == pytest.approx(42)
    assert figure(report, m.CANARY_AGE, "s3").value is None  # no canary of PEER in this bucket
    assert figure(report, m.REPLICATION_LAG, "aurora").value == 0.12
    assert figure(report, m.RPO_LAG, "aurora").value == 0.9
    estimate = figure(report, m.RPO_ESTIMATE)
    assert (estimate.value, estimate.target_region) == (0.9, HERE)


def test_with_the_control_item_unreadable_nothing_is_written_and_the_role_is_unknown() -> None:
    world = World(control=Control(error=RuntimeError("throttled")))
    assert world.ledger is not None

    report = world.monitor().run(seconds=50)

    assert report.role is None
    assert world.ledger.beats == [] and world.sessions.written == {}
    assert report.probes["region-control"] == "raised RuntimeError: throttled"
    assert set(report.probes) == {"region-control", "replication-members", "health"}


# -- missing is missing ---------------------------------------------------------------------------


def test_a_failing_probe_leaves_its_figures_missing_and_counted() -> None:
    world = World()
    assert world.ledger is not None

    def down(origin_region: str) -> str:
        raise LedgerUnavailable("cannot connect to the ledger (MySQL error 2003)")

    world.ledger.beat = down  # type: ignore[method-assign]

    report = world.monitor().run(seconds=50)

    canary = figure(report, m.CANARY_LAG, "aurora")
    assert canary.value is None
    assert (
        canary.note == "raised LedgerUnavailable: cannot connect to the ledger (MySQL error 2003)"
    )
    # also missing: both AWS lag figures (no datapoints here)
    assert figure(report, m.FIGURES_MISSING).value == 3.0


def test_aws_metrics_without_datapoints_are_missing_never_zero() -> None:
    report = World().monitor().run(seconds=50)

    for store in ("dynamodb", "s3"):
        lag = figure(report, m.REPLICATION_LAG, store)
        assert lag.value is None and lag.note == "no datapoint in the window"


def test_membership_is_zero_when_the_peer_left_the_global_cluster() -> None:
    world = World()
    world.cluster.state = GlobalClusterState(
        "available", (GlobalMember(HERE, "dr-payment-primary-test", True),)
    )
    world.sessions.statuses = {PEER: "UPDATING"}

    report = world.monitor().run(seconds=50)

    members = {
        (f.store, f.target_region): f.value for f in report.figures if f.metric == m.REPLICATING
    }
    assert members == {("aurora", HERE): 1.0, ("aurora", PEER): 0.0, ("dynamodb", PEER): 0.0}


# -- what is published ----------------------------------------------------------------------------


def test_published_figures_carry_exactly_their_dimensions_and_missing_ones_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = World().monitor().run(seconds=50)

    publish(report, "test")

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    published = {
        (blob["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], blob.get("Store"))
        for blob in blobs
    }
    assert (m.CANARY_LAG, "aurora") in published
    assert (m.REPLICATION_LAG, "dynamodb") not in published  # missing: no datapoint, not 0
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == m.NAMESPACE
        [name] = [metric["Name"] for metric in directive["Metrics"]]
        assert tuple(directive["Dimensions"][0]) == m.SPECS[name].dimensions  # no `service`


def test_a_published_figure_carries_milliseconds_not_seventeen_digits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A float's full repr can hold a Luhn-valid 13-19 digit run: the log scanner flagged
    CanaryLagSeconds 0.04173790899949381 (17 digits ending 9381) as a card number."""
    lag = Figure(m.CANARY_LAG, 0.04173790899949381, store="aurora", target_region=PEER)
    report = MonitorReport(region=HERE, role=Role.ACTIVE, active_region=HERE, figures=(lag,))

    publish(report, "test")

    [blob] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert blob[m.CANARY_LAG] == [0.042]


def test_the_schedule_sample_is_what_the_monitors_rule_sends() -> None:
    from ops.sandbox.functions import Resolver
    from ops.sandbox.resources import REGIONAL_TEMPLATE, load_template
    from tests.conftest import load_event

    event = load_event("replication_monitor_schedule.json")
    monitor = load_template(REGIONAL_TEMPLATE)["Resources"]["ReplicationMonitorFunction"]
    schedule = monitor["Properties"]["Events"]["EveryMinute"]
    resolve = Resolver(
        region="us-east-1",
        parameters={"Environment": "dev", "RegionRole": "primary"},
        ssm={},
        queue_urls={},
    )

    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    rule = resolve.resolve(schedule["Properties"]["Name"])
    assert event["resources"] == [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"]
