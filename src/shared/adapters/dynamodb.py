"""DynamoDB adapters: the sessions projection, the region gate, the replication canary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.region_control import DynamoRegionControl
from shared.errors import DeadlineExceeded, MonitoringUnavailable, SessionsUnavailable
from shared.names import canary_key
from shared.records import PaymentRecord


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


class DynamoSessions:
    """The sessions table holds the replicated, queryable state of each payment. The ledger is the
    truth; this is its projection, so writes are upserts guarded by ``refunded_minor``, the one
    field that changes after a payment is recorded: an older state never overwrites a newer one."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def project(self, record: PaymentRecord) -> None:
        values: dict[str, Any] = {
            ":type": {"S": record.type},
            ":status": {"S": "PROCESSED"},
            ":merchant": {"S": record.merchant_id},
            ":customer": {"S": record.customer_id},
            ":amount": {"N": str(record.amount_minor)},
            ":currency": {"S": record.currency},
            ":occurred": {"S": _iso(record.occurred_at)},
            ":processed": {"S": _iso(record.processed_at)},
            ":region": {"S": record.processed_region},
            ":hash": {"S": record.payload_hash},
            ":refunded": {"N": str(record.refunded_minor)},
        }
        assignments = (
            "#type = :type, #status = :status, merchant_id = :merchant, customer_id = :customer, "
            "amount_minor = :amount, currency = :currency, occurred_at = :occurred, "
            "processed_at = :processed, processed_region = :region, payload_hash = :hash, "
            "refunded_minor = :refunded"
        )
        if record.original_payment_id is not None:
            values[":original"] = {"S": record.original_payment_id}
            assignments += ", original_payment_id = :original"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"payment_id": {"S": record.payment_id}},
                UpdateExpression="SET " + assignments,
                ConditionExpression=(
                    "attribute_not_exists(payment_id) OR refunded_minor < :refunded"
                ),
                ExpressionAttributeNames={"#type": "type", "#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return  # already projected at this state or a newer one
            raise SessionsUnavailable(
                f"sessions write failed: {exc.response['Error']['Code']}"
            ) from exc
        except DeadlineExceeded:
            raise
        except BotoCoreError as exc:
            raise SessionsUnavailable(f"sessions write failed: {type(exc).__name__}") from exc


class DynamoRegionGate:
    """Reads the region-control item of the global table (in this region's replica). The answer
    is trusted for ``cache_seconds``; the ledger's read-only answer is the hard fence behind it.
    No item, or an item naming another region (or none), means passive: fail closed."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        region: str,
        *,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = DynamoRegionControl(client, table_name)
        self._region = region
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, bool] | None = None

    def is_active(self) -> bool:
        """Raises RegionStateUnavailable when the item cannot be read."""
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._cache_seconds:
            return self._cached[1]
        control = self._control.read()
        active = control is not None and control.names(self._region)
        self._cached = (now, active)
        return active


class DynamoCanary:
    """The replication canary item of a global table: written in the active region's replica,
    read in each region's own replica. Key `canary#<origin region>` (shared.names); it carries
    no processed_at, so it is never taken for a payment."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def beat(self, origin_region: str, written_at: float) -> None:
        """Put the canary with `written_at` (seconds since the epoch, this function's clock)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "payment_id": {"S": canary_key(origin_region)},
                    "written_at": {"N": f"{written_at:.3f}"},
                },
            )
        except DeadlineExceeded:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise MonitoringUnavailable(f"canary not written: {_reason(exc)}") from exc

    def written_at(self, origin_region: str) -> float | None:
        """When the canary this replica holds was written; None when it holds none."""
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key={"payment_id": {"S": canary_key(origin_region)}},
                ConsistentRead=True,
            ).get("Item")
        except DeadlineExceeded:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise MonitoringUnavailable(f"canary unreadable: {_reason(exc)}") from exc
        return None if not item or "written_at" not in item else float(item["written_at"]["N"])

    def replicas(self) -> dict[str, str]:
        """ReplicaStatus by region of the table's replicas, as this region's replica describes
        them (empty: not a global table)."""
        try:
            table = self._client.describe_table(TableName=self._table)["Table"]
        except DeadlineExceeded:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise MonitoringUnavailable(f"table not described: {_reason(exc)}") from exc
        return {
            str(replica["RegionName"]): str(replica.get("ReplicaStatus", ""))
            for replica in table.get("Replicas", [])
        }


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__
