"""Composition root: the real probes, built once per execution environment, on first use."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from health.checks import HealthService
from shared.adapters import aws
from shared.adapters.dynamodb import DynamoRegionGate
from shared.adapters.ledger_probe import MySQLLedgerProbe
from shared.adapters.mysql import MySQLConnector
from shared.adapters.s3 import S3DocumentsBucket
from shared.config import HealthSettings, get_health_settings


def build_service(settings: HealthSettings) -> HealthService:
    config = aws.probe_config(settings.check_timeout_seconds)
    region = settings.aws_region
    secrets = aws.client("secretsmanager", region, config=config)
    return HealthService(
        ledger=MySQLLedgerProbe(
            MySQLConnector.from_settings(settings, provider=SecretsProvider(boto3_client=secrets)),
            timeout=settings.check_timeout_seconds,
        ),
        # No gate cache: the whole report is cached instead, and a check must really read.
        region_gate=DynamoRegionGate(
            aws.client("dynamodb", region, config=config),
            settings.region_control_table,
            region,
            cache_seconds=0,
        ),
        documents=S3DocumentsBucket(aws.client("s3", region, config=config), settings.docs_bucket),
        budget_seconds=settings.budget_seconds,
        check_timeout_seconds=settings.check_timeout_seconds,
        cache_seconds=settings.cache_seconds,
    )


@lru_cache(maxsize=1)
def get_service() -> HealthService:
    return build_service(get_health_settings())
