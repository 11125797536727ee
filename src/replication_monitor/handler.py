"""ReplicationMonitorFunction (every minute): replication lag of every store, end to end and as
AWS reports it, an RPO estimate, and this region's health verdict, published as EMF metrics
(shared/metric_names.py). It never pages: CloudWatch alarms on these metrics do (template.yaml).

A figure that could not be measured is left out of the metrics (missing, never 0) and listed in
the response with the reason; FiguresMissing counts them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from replication_monitor.service import MonitorReport, ReplicationMonitor
from replication_monitor.wiring import get_monitor
from shared import metric_names
from shared.config import get_monitor_settings
from shared.deadline import Deadline
from shared.observability import MetricUnit, logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(event, context)


def run(
    event: dict[str, Any], context: Any, *, monitor: ReplicationMonitor | None = None
) -> dict[str, Any]:
    """The handler without its decorators: tests pass their own monitor."""
    settings = get_monitor_settings()
    deadline = Deadline.from_context(context, margin=settings.deadline_margin_seconds)
    with deadline.active():
        report = (monitor or get_monitor()).run(seconds=max(0.0, deadline.remaining()))
    publish(report, settings.environment)
    summary = report.as_dict()
    missing = [f"{f.metric}/{f.store or f.region or f.target_region}" for f in report.missing()]
    logger.info(
        f"replication figures: {len(summary['published'])} published, {len(missing)} missing",
        extra={"report": summary, "trigger": event.get("detail-type", "")},
    )
    return summary


def publish(report: MonitorReport, env: str) -> None:
    """One EMF document per measured figure (each has its own dimensions), none when missing.

    service="" on purpose: Powertools otherwise adds a `service` dimension to every metric, and
    a figure's identity must be exactly metric_names' dimensions (the alarms name them)."""
    for figure in report.figures:
        if figure.value is None:
            continue
        emf = AmazonCloudWatchEMFProvider(namespace=metric_names.NAMESPACE, service="")
        for name, value in figure.dimensions(env).items():
            emf.add_dimension(name=name, value=value)
        # Milliseconds are all a lag carries; a float's full 17 digits may also read as a
        # Luhn-valid card number to a log scanner (ours flagged 0.04173790899949381).
        emf.add_metric(
            name=figure.metric, unit=MetricUnit(figure.unit), value=round(figure.value, 3)
        )
        emf.flush_metrics()
