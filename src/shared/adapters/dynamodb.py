"""DynamoDB adapters: the sessions projection and the region gate."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.region_control import DynamoRegionControl
from shared.errors import DeadlineExceeded, SessionsUnavailable
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
