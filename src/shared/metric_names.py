"""Replication metrics: what ReplicationMonitorFunction publishes and `drctl status` reads.

Defined here once, before the monitor exists (issue 8 adopts it), so drctl, the monitor, the
template's alarms and the dashboard cannot disagree on a name. Each region's monitor publishes
the lag INTO its own region (TargetRegion = where it runs), in its own region's CloudWatch:
a region that is down then simply has no fresh datapoints, which `drctl status` shows as such.
"""

from __future__ import annotations

from enum import StrEnum

NAMESPACE = "DrPayment/Replication"

# Provider-reported lag in seconds: Aurora AuroraGlobalDBReplicationLag (ms / 1000), DynamoDB
# ReplicationLatency (ms / 1000), S3 RTC ReplicationLatency.
REPLICATION_LAG = "ReplicationLagSeconds"
# End to end: a canary written in the other region, read back here; seconds until it appeared.
CANARY_LAG = "CanaryLagSeconds"
# 1 when this region's replica of the store is receiving replication at all, else 0.
REPLICATING = "Replicating"

DIMENSION_ENVIRONMENT = "Environment"
DIMENSION_STORE = "Store"
DIMENSION_TARGET_REGION = "TargetRegion"


class Store(StrEnum):
    AURORA = "aurora"
    DYNAMODB = "dynamodb"
    S3 = "s3"


def dimensions(env: str, store: Store | str, target_region: str) -> list[dict[str, str]]:
    """CloudWatch dimensions of one store's lag into one region."""
    return [
        {"Name": DIMENSION_ENVIRONMENT, "Value": env},
        {"Name": DIMENSION_STORE, "Value": str(Store(store))},
        {"Name": DIMENSION_TARGET_REGION, "Value": target_region},
    ]
