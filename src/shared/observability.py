"""The one place logger, tracer and metrics are made. Service name and namespace come from the
POWERTOOLS_* environment the template sets; the defaults serve tests and the sandbox."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "payment-processor")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DrPayment")

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


class _UntracedTracer:
    """Stands in for Powertools' Tracer when the X-Ray SDK is off (EnableXRaySdk=false).
    Powertools' Tracer imports and configures the SDK even when disabled (~200 ms of cold
    start, docs/performance.md); this keeps the decorators and loads nothing."""

    def capture_lambda_handler(
        self, **_: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda handler: handler

    def capture_method(self, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda method: method

    def put_annotation(self, key: str, value: Any) -> None:
        return None


def _make_tracer() -> Any:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() == "true":
        return _UntracedTracer()
    from aws_lambda_powertools import Tracer

    # Patch only what the write path calls; patch_all would also wrap httplib, requests, sqlite3.
    return Tracer(service=SERVICE, patch_modules=["botocore", "pymysql"])


tracer = _make_tracer()

__all__ = ["logger", "tracer", "metrics", "MetricUnit"]
