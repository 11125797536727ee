"""What the replication monitor measures, as data: one Probe per line of `probes()`, each with the
region roles it matters for and the figures it yields (shared/metric_names.py says where each
figure is published and why). The AWS and MySQL calls are the adapters' (the ports below).

End to end, the ledger: the ACTIVE region's monitor commits a heartbeat (a new token) on the
writer and watches the PEER region's reader (over the VPC peering, the one cross-region path a
function has) until the token appears: CanaryLagSeconds = seconds from COMMIT's answer to the
token being visible there. If it does not appear within the wait, the figure is the age of the
newest heartbeat the peer holds: an upper bound on the lag (the lag is at least the wait), which
grows every minute while replication is stopped or held.

The DynamoDB item and the S3 object canaries cannot be waited for across regions (no AWS call
leaves the region): the active region writes them, and each PASSIVE region reads its own copy
and publishes its age (CanaryAgeSeconds: the lag plus up to a minute since the last write). The
providers' own figures (ReplicationLatency of both) are read in the source region.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from replication_monitor.service import Figure, Probe, Situation
from shared import metric_names as m
from shared.adapters.cloudwatch import MetricQuery
from shared.adapters.rds import GlobalClusterState
from shared.checks import Role
from shared.metric_names import Store
from shared.names import DOCUMENTS_REPLICATION_RULE

ACTIVE = frozenset({Role.ACTIVE})
PASSIVE = frozenset({Role.PASSIVE})
MS = 1 / 1000


class HeartbeatWatch(Protocol):
    def has(self, origin_region: str, token: str) -> bool: ...

    def age(self, origin_region: str | None = None) -> float | None: ...


class Heartbeat(Protocol):
    def beat(self, origin_region: str) -> str: ...

    def heartbeat_age(self, origin_region: str | None = None) -> float | None: ...

    def watch(self) -> AbstractContextManager[HeartbeatWatch]: ...


class Canary(Protocol):
    def beat(self, origin_region: str, written_at: float) -> None: ...

    def written_at(self, origin_region: str) -> float | None: ...


class TableCanary(Canary, Protocol):
    def replicas(self) -> dict[str, str]: ...


class Metrics(Protocol):
    def latest(
        self, queries: Sequence[MetricQuery], *, window_seconds: int, period: int = 60
    ) -> list[float | None]: ...


class GlobalCluster(Protocol):
    def describe(self) -> GlobalClusterState | None: ...


class HealthRun(Protocol):
    def run(self) -> Any:
        """A HealthReport (health.checks): .healthy, .active."""
        ...


@dataclass(frozen=True)
class Ports:
    writer: Heartbeat  # the ledger's writer (DB_HOST)
    own_reader: Heartbeat  # this region's cluster reader endpoint
    peer_reader: Heartbeat  # the peer region's cluster reader endpoint, over the peering
    sessions: TableCanary
    documents: Canary
    metrics: Metrics
    global_cluster: GlobalCluster
    health: HealthRun


@dataclass(frozen=True)
class Config:
    env: str
    region: str
    peer_region: str
    region_role: str  # the stack's role: primary | secondary
    cluster: str  # this region's Aurora cluster identifier
    sessions_table: str
    docs_bucket: str
    peer_docs_bucket: str
    canary_wait_seconds: float
    canary_poll_seconds: float
    metric_window_seconds: int
    check_timeout_seconds: float
    wall: Callable[[], float] = field(default=time.time)  # seconds since the epoch
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    @property
    def replicates_documents(self) -> bool:
        """Only the primary's documents bucket has a replication rule (buckets.yaml)."""
        return self.region_role == "primary"


def probes(ports: Ports, config: Config) -> list[Probe]:
    own, peer = config.region, config.peer_region
    aurora_canary = Figure(m.CANARY_LAG, None, Store.AURORA, peer)
    dynamodb_lag = Figure(m.REPLICATION_LAG, None, Store.DYNAMODB, peer)
    s3_figures = (
        Figure(m.REPLICATION_LAG, None, Store.S3, peer),
        Figure(m.PENDING_OPERATIONS, None, Store.S3, peer),
        Figure(m.FAILED_OPERATIONS, None, Store.S3, peer),
    )
    aurora_provider = (
        Figure(m.REPLICATION_LAG, None, Store.AURORA, own),
        Figure(m.RPO_LAG, None, Store.AURORA, own),
    )
    replicating = tuple(
        Figure(m.REPLICATING, None, store, region)
        for store, region in ((Store.AURORA, own), (Store.AURORA, peer), (Store.DYNAMODB, peer))
    )
    health = (Figure(m.REGION_HEALTHY, None, region=own), Figure(m.REGION_ACTIVE, None, region=own))
    wait = config.canary_wait_seconds + 2 * config.check_timeout_seconds
    return [
        # -- the active region: canaries out, the source side's figures
        Probe("aurora-canary", (aurora_canary,), _aurora_canary(ports, config), ACTIVE, wait),
        Probe("dynamodb-canary", (), _write(ports.sessions, config), ACTIVE),
        Probe("s3-canary", (), _write(ports.documents, config), ACTIVE),
        Probe("dynamodb-metrics", (dynamodb_lag,), _dynamodb_metrics(ports, config), ACTIVE),
        *(
            [Probe("s3-metrics", s3_figures, _s3_metrics(ports, config), ACTIVE)]
            if config.replicates_documents
            else []
        ),
        # -- a passive region: its own copies
        Probe("aurora-metrics", aurora_provider, _aurora_metrics(ports, config), PASSIVE),
        *(
            Probe(f"{store}-copy", (Figure(m.CANARY_AGE, None, store, own),), read, PASSIVE)
            for store, read in _copies(ports, config).items()
        ),
        # -- both: membership, and the health checks' verdict
        Probe("replication-members", replicating, _members(ports, config)),
        Probe("health", health, _health(ports, config), alone=True),
    ]


# -- the active region ----------------------------------------------------------------------------


def _aurora_canary(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    def measure(situation: Situation) -> list[Figure]:
        token = ports.writer.beat(config.region)
        committed = config.clock()
        # Keep a moment to read the age of the newest heartbeat if this one does not show.
        until = min(committed + config.canary_wait_seconds, situation.deadline - 1.0)
        with ports.peer_reader.watch() as peer:
            while True:
                if peer.has(config.region, token):
                    lag = config.clock() - committed
                    note = "heartbeat seen on the peer's reader"
                    return [Figure(m.CANARY_LAG, lag, Store.AURORA, config.peer_region, note=note)]
                if config.clock() + config.canary_poll_seconds > until:
                    break
                config.sleep(config.canary_poll_seconds)
            age = peer.age(config.region)
        waited = config.clock() - committed
        note = (
            f"heartbeat not seen within {waited:.1f}s: age of the newest one there (the lag is "
            f"between {waited:.1f}s and this)"
            if age is not None
            else "no heartbeat of this region on the peer's reader"
        )
        return [Figure(m.CANARY_LAG, age, Store.AURORA, config.peer_region, note=note)]

    return measure


def _write(canary: Canary, config: Config) -> Callable[[Situation], list[Figure]]:
    def measure(_: Situation) -> list[Figure]:
        canary.beat(config.region, config.wall())
        return []

    return measure


def _dynamodb_metrics(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    query = MetricQuery(
        "AWS/DynamoDB",
        "ReplicationLatency",
        {"TableName": config.sessions_table, "ReceivingRegion": config.peer_region},
    )

    def measure(_: Situation) -> list[Figure]:
        [latency] = ports.metrics.latest([query], window_seconds=config.metric_window_seconds)
        value = None if latency is None else latency * MS
        return [
            Figure(m.REPLICATION_LAG, value, Store.DYNAMODB, config.peer_region, note=_aws(latency))
        ]

    return measure


def _s3_metrics(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    dimensions = {
        "SourceBucket": config.docs_bucket,
        "DestinationBucket": config.peer_docs_bucket,
        "RuleId": DOCUMENTS_REPLICATION_RULE,
    }
    names = (  # S3 gives the latency in seconds
        (m.REPLICATION_LAG, "ReplicationLatency"),
        (m.PENDING_OPERATIONS, "OperationsPendingReplication"),
        (m.FAILED_OPERATIONS, "OperationsFailedReplication"),
    )

    def measure(_: Situation) -> list[Figure]:
        values = ports.metrics.latest(
            [MetricQuery("AWS/S3", aws, dimensions) for _, aws in names],
            window_seconds=config.metric_window_seconds,
        )
        return [
            Figure(ours, value, Store.S3, config.peer_region, note=_aws(value))
            for (ours, _), value in zip(names, values, strict=True)
        ]

    return measure


# -- a passive region -----------------------------------------------------------------------------


def _aurora_metrics(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    dimensions = {"DBClusterIdentifier": config.cluster}
    queries = [
        MetricQuery("AWS/RDS", "AuroraGlobalDBReplicationLag", dimensions),
        MetricQuery("AWS/RDS", "AuroraGlobalDBRPOLag", dimensions),
    ]

    def measure(_: Situation) -> list[Figure]:
        lag, rpo = ports.metrics.latest(queries, window_seconds=config.metric_window_seconds)
        return [
            Figure(m.REPLICATION_LAG, _seconds(lag), Store.AURORA, config.region, note=_aws(lag)),
            Figure(m.RPO_LAG, _seconds(rpo), Store.AURORA, config.region, note=_aws(rpo)),
        ]

    return measure


def _copies(ports: Ports, config: Config) -> dict[Store, Callable[[Situation], list[Figure]]]:
    def age_of(store: Store, read: Callable[[str], float | None]) -> Callable[..., list[Figure]]:
        def measure(situation: Situation) -> list[Figure]:
            origin = situation.active_region
            if origin is None:
                return [Figure(m.CANARY_AGE, None, store, config.region, note="no active region")]
            age = read(origin)
            note = (
                f"newest canary of {origin} here"
                if age is not None
                else f"no canary of {origin} here"
            )
            return [Figure(m.CANARY_AGE, age, store, config.region, note=note)]

        return measure

    def wall_age(canary: Canary) -> Callable[[str], float | None]:
        def read(origin: str) -> float | None:
            written = canary.written_at(origin)
            return None if written is None else max(0.0, config.wall() - written)

        return read

    return {
        Store.AURORA: age_of(Store.AURORA, ports.own_reader.heartbeat_age),
        Store.DYNAMODB: age_of(Store.DYNAMODB, wall_age(ports.sessions)),
        Store.S3: age_of(Store.S3, wall_age(ports.documents)),
    }


# -- both -----------------------------------------------------------------------------------------


def _members(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    def measure(_: Situation) -> list[Figure]:
        cluster = ports.global_cluster.describe()
        figures = []
        for region in (config.region, config.peer_region):
            member = cluster.member(region) if cluster else None
            healthy = cluster is not None and member is not None and member.replicating
            if cluster is None:
                note = "no global cluster"
            elif member is None:
                note = f"not a member of the global cluster ({cluster.status})"
            else:
                kind = "writer" if member.writer else member.synchronization or "member"
                note = f"{kind}, global cluster {cluster.status}"
            figures.append(Figure(m.REPLICATING, float(healthy), Store.AURORA, region, note=note))
        status = ports.sessions.replicas().get(config.peer_region)
        figures.append(
            Figure(
                m.REPLICATING,
                float(status == "ACTIVE"),
                Store.DYNAMODB,
                config.peer_region,
                note=f"replica {status}" if status else "no replica there",
            )
        )
        return figures

    return measure


def _health(ports: Ports, config: Config) -> Callable[[Situation], list[Figure]]:
    def measure(_: Situation) -> list[Figure]:
        report = ports.health.run()
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failed()) or "all passed"
        active = None if report.active is None else float(report.active)
        return [
            Figure(m.REGION_HEALTHY, float(report.healthy), region=config.region, note=failed),
            Figure(m.REGION_ACTIVE, active, region=config.region, note=report.role),
        ]

    return measure


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else milliseconds * MS


def _aws(value: float | None) -> str:
    return "CloudWatch" if value is not None else "no datapoint in the window"
