"""HealthFunction: the Function URL Route 53 probes (HTTPS_STR_MATCH on the token HEALTHY).

The public answer is a status and a stable token, nothing else: which check failed, and why,
goes to the logs and to EMF metrics (HealthCheckFailed per check, Healthy per answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import single_metric

from health.checks import HealthReport, HealthService
from health.wiring import get_service
from shared.observability import MetricUnit, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

HEADERS = {"content-type": "text/plain", "cache-control": "no-store"}
ANSWERED_METHODS = frozenset({"GET", "HEAD"})


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(event, context)


def respond(
    event: dict[str, Any], context: Any, *, service: HealthService | None = None
) -> dict[str, Any]:
    """The handler without its decorators: tests pass their own service."""
    http = event.get("requestContext", {}).get("http", {})
    method = str(http.get("method", "GET")).upper()
    if method not in ANSWERED_METHODS:
        return {"statusCode": 405, "headers": {**HEADERS, "allow": "GET, HEAD"}, "body": ""}
    report = (service or get_service()).check()
    _publish(report, user_agent=str(http.get("userAgent", "")))
    return {
        "statusCode": 200 if report.healthy else 503,
        "headers": dict(HEADERS),
        "body": "HEALTHY" if report.healthy else "UNHEALTHY",
    }


def _publish(report: HealthReport, *, user_agent: str) -> None:
    metrics.add_metric(name="Healthy", unit=MetricUnit.Count, value=1 if report.healthy else 0)
    if not report.fresh:
        return  # this answer came from the cache: its checks were already logged and counted
    for check in report.checks:
        # One metric per check (its own `check` dimension), so single_metric, not `metrics`.
        with single_metric(
            name="HealthCheckFailed",
            unit=MetricUnit.Count,
            value=0 if check.ok else 1,
            namespace=metrics.namespace,
            default_dimensions={"service": str(metrics.service)},
        ) as metric:
            metric.add_dimension(name="check", value=check.name)
    summary = {
        "healthy": report.healthy,
        "role": report.role,
        "checks": {
            check.name: {"ok": check.ok, "ms": round(check.seconds * 1000), "detail": check.detail}
            for check in report.checks
        },
        "user_agent": user_agent,
    }
    if report.healthy:
        logger.info("health checks passed", extra=summary)
    else:
        failed = ", ".join(check.name for check in report.failed())
        logger.warning(f"health checks failed: {failed}", extra=summary)
