"""CloudWatch metrics AWS services publish about our resources, read in this region (the
`monitoring` interface endpoint): the newest datapoint of each, or None when there is none."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import DeadlineExceeded, MonitoringUnavailable


@dataclass(frozen=True)
class MetricQuery:
    namespace: str
    name: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    stat: str = "Maximum"


class CloudWatchMetrics:
    def __init__(
        self, client: Any, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client = client
        self._clock = clock

    def latest(
        self, queries: Sequence[MetricQuery], *, window_seconds: int, period: int = 60
    ) -> list[float | None]:
        """The newest value of each query within the last `window_seconds` (one GetMetricData
        call), in the order given; None for a metric without a datapoint there."""
        if not queries:
            return []
        end = self._clock()
        try:
            response = self._client.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": f"q{index}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": query.namespace,
                                "MetricName": query.name,
                                "Dimensions": [
                                    {"Name": k, "Value": v} for k, v in query.dimensions.items()
                                ],
                            },
                            "Period": period,
                            "Stat": query.stat,
                        },
                        "ReturnData": True,
                    }
                    for index, query in enumerate(queries)
                ],
                StartTime=end - timedelta(seconds=window_seconds),
                # A period past now: the current, partial minute's datapoints count too.
                EndTime=end + timedelta(seconds=period),
                ScanBy="TimestampDescending",
            )
        except DeadlineExceeded:
            raise
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise MonitoringUnavailable(f"GetMetricData answered {code}") from exc
        except BotoCoreError as exc:
            raise MonitoringUnavailable(f"GetMetricData failed: {type(exc).__name__}") from exc
        newest: dict[str, float] = {}
        for result in response.get("MetricDataResults", []):
            stamps, values = result.get("Timestamps", []), result.get("Values", [])
            if values:
                newest[result["Id"]] = float(
                    values[stamps.index(max(stamps))] if stamps else values[0]
                )
        return [newest.get(f"q{index}") for index in range(len(queries))]
