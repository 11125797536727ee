"""The metrics ReplicationMonitorFunction publishes (EMF): names, dimensions and units, defined
once for the monitor, `drctl status`, the template's alarms and dashboard, and the tests that
check every alarm watches a metric something publishes.

Every lag is the lag of one store INTO one region (TargetRegion: the region that receives the
copy), published in the region whose monitor could measure it, because a function in a VPC
reaches only its own region's AWS APIs:

    figure                     store      what                                     TargetRegion
    ReplicationLagSeconds      aurora     AuroraGlobalDBReplicationLag, read where   own
                                          the receiving cluster is
    RpoLagSeconds              aurora     AuroraGlobalDBRPOLag, idem                 own
    ReplicationLagSeconds      dynamodb   ReplicationLatency, read in the source     peer
                                          (active) region
    ReplicationLagSeconds,     s3         S3 RTC metrics, read where the             peer
    PendingOperations,                    replicating bucket is (primary)
    FailedOperations
    CanaryLagSeconds           aurora     active region: heartbeat committed on the  peer
                                          writer, waited for on the peer's reader
    CanaryAgeSeconds           each       passive region: age of the newest canary   own
                                          its own copy holds
    Replicating                aurora,    1 while that copy is a healthy member      each
                               dynamodb   (cluster member in sync, replica ACTIVE)
    RpoEstimateSeconds         -          the largest lag figure of the run for a    as measured
                                          target (only with the ledger's measured)

A figure that could not be measured is not published at all (missing, never 0); FiguresMissing
counts the lag and age figures the region's role expects that are missing. RegionHealthy and
RegionActive are the health checks' verdict and the region's role, from the same checks the
HealthFunction runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NAMESPACE = "DrPayment/Replication"

REPLICATION_LAG = "ReplicationLagSeconds"  # provider-reported (ms / 1000 where AWS gives ms)
RPO_LAG = "RpoLagSeconds"
CANARY_LAG = "CanaryLagSeconds"  # end to end
CANARY_AGE = "CanaryAgeSeconds"
REPLICATING = "Replicating"
PENDING_OPERATIONS = "PendingOperations"
FAILED_OPERATIONS = "FailedOperations"
RPO_ESTIMATE = "RpoEstimateSeconds"
FIGURES_MISSING = "FiguresMissing"
REGION_HEALTHY = "RegionHealthy"
REGION_ACTIVE = "RegionActive"

DIMENSION_ENVIRONMENT = "Environment"
DIMENSION_STORE = "Store"
DIMENSION_TARGET_REGION = "TargetRegion"
DIMENSION_REGION = "Region"

STORE_DIMENSIONS = (DIMENSION_ENVIRONMENT, DIMENSION_STORE, DIMENSION_TARGET_REGION)
TARGET_DIMENSIONS = (DIMENSION_ENVIRONMENT, DIMENSION_TARGET_REGION)
REGION_DIMENSIONS = (DIMENSION_ENVIRONMENT, DIMENSION_REGION)

SECONDS = "Seconds"
COUNT = "Count"


class Store(StrEnum):
    AURORA = "aurora"
    DYNAMODB = "dynamodb"
    S3 = "s3"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    dimensions: tuple[str, ...]
    unit: str


SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(REPLICATION_LAG, STORE_DIMENSIONS, SECONDS),
        MetricSpec(RPO_LAG, STORE_DIMENSIONS, SECONDS),
        MetricSpec(CANARY_LAG, STORE_DIMENSIONS, SECONDS),
        MetricSpec(CANARY_AGE, STORE_DIMENSIONS, SECONDS),
        MetricSpec(REPLICATING, STORE_DIMENSIONS, COUNT),
        MetricSpec(PENDING_OPERATIONS, STORE_DIMENSIONS, COUNT),
        MetricSpec(FAILED_OPERATIONS, STORE_DIMENSIONS, COUNT),
        MetricSpec(RPO_ESTIMATE, TARGET_DIMENSIONS, SECONDS),
        MetricSpec(FIGURES_MISSING, REGION_DIMENSIONS, COUNT),
        MetricSpec(REGION_HEALTHY, REGION_DIMENSIONS, COUNT),
        MetricSpec(REGION_ACTIVE, REGION_DIMENSIONS, COUNT),
    )
}
# What the stores' lag figures are, for the RPO estimate: an age includes the time since the
# last canary was written (up to a minute), so it bounds the lag from above but is not one.
LAG_FIGURES = frozenset({REPLICATION_LAG, RPO_LAG, CANARY_LAG})
# FiguresMissing counts these when the region's role expects them and they could not be read:
# without them replication is not proven. (Membership, S3 operation counts and the verdicts have
# alarms or meanings of their own.)
WATCHED_FIGURES = LAG_FIGURES | {CANARY_AGE}


def _pairs(names: tuple[str, ...], values: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in zip(names, values, strict=True)]


def dimensions(env: str, store: Store | str, target_region: str) -> list[dict[str, str]]:
    """CloudWatch dimensions of one store's figure into one region."""
    return _pairs(STORE_DIMENSIONS, (env, str(Store(store)), target_region))


def target_dimensions(env: str, target_region: str) -> list[dict[str, str]]:
    return _pairs(TARGET_DIMENSIONS, (env, target_region))


def region_dimensions(env: str, region: str) -> list[dict[str, str]]:
    return _pairs(REGION_DIMENSIONS, (env, region))


# The processor counts each outcome (EMF, namespace POWERTOOLS_METRICS_NAMESPACE, dimension
# service): PaymentProcessed, PaymentDuplicate, PaymentConflict, PaymentRejected, PaymentParked.
def outcome_metric(outcome: str) -> str:
    return f"Payment{outcome.title()}"
