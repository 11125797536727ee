"""The region-control item in one region's replica of the global table: read, write (the epoch
only grows), ensure. Used by the region gate (processor, health check), drctl and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import region_control
from shared.errors import DeadlineExceeded, RegionStateUnavailable
from shared.region_control import RegionControl

_CONDITION_FAILED = "ConditionalCheckFailedException"


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # this replica already holds that state (a retry, or replicated)
    STALE = "stale"  # it holds the same or a newer epoch with another state: nothing written


@dataclass(frozen=True)
class WriteResult:
    outcome: WriteOutcome
    current: RegionControl | None  # what the replica holds after the call

    @property
    def applied(self) -> bool:
        return self.outcome is not WriteOutcome.STALE


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoRegionControl:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    def read(self) -> RegionControl | None:
        """The item (strongly consistent within this replica), or None when there is none."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key=region_control.key(), ConsistentRead=True
            ).get("Item")
        except DeadlineExceeded:
            raise
        except ClientError as exc:
            raise RegionStateUnavailable(
                f"region-control item unreadable in {self.region}: {_code(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise RegionStateUnavailable(
                f"region-control item unreadable in {self.region}: {type(exc).__name__}"
            ) from exc
        return region_control.from_item(item)

    def write(self, control: RegionControl) -> WriteResult:
        """Put `control` unless this replica holds its epoch or a newer one already."""
        try:
            self._put(control, region_control.newer_epoch_condition(control))
        except _ConditionFailed:
            current = self.read()
            outcome = WriteOutcome.UNCHANGED if control.same_state(current) else WriteOutcome.STALE
            return WriteResult(outcome, current)
        return WriteResult(WriteOutcome.WRITTEN, control)

    def ensure(self, control: RegionControl) -> WriteResult:
        """Put `control` only if there is no item at all (a fresh environment); never overwrites."""
        try:
            self._put(control, region_control.absent_condition())
        except _ConditionFailed:
            return WriteResult(WriteOutcome.UNCHANGED, self.read())
        return WriteResult(WriteOutcome.WRITTEN, control)

    def _put(self, control: RegionControl, condition: dict[str, Any]) -> None:
        try:
            self._client.put_item(
                TableName=self._table, Item=region_control.to_item(control), **condition
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                raise _ConditionFailed from exc
            raise RegionStateUnavailable(
                f"region-control item not written in {self.region}: {_code(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise RegionStateUnavailable(
                f"region-control item not written in {self.region}: {type(exc).__name__}"
            ) from exc


class _ConditionFailed(Exception):
    pass
