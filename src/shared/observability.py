"""The one place logger, tracer and metrics are made. Service name and namespace come from the
POWERTOOLS_* environment the template sets; the defaults serve tests and the sandbox."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "payment-processor")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DrPayment")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

__all__ = ["logger", "tracer", "metrics", "MetricUnit"]
