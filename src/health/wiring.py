"""Composition root: the real probes, built once per execution environment, on first use. The
replication monitor builds the same service (it runs the same checks every minute)."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from health.checks import HealthService, health_checks
from shared.adapters import aws
from shared.adapters.dynamodb import DynamoRegionGate
from shared.adapters.heartbeat import MySQLHeartbeat
from shared.adapters.ledger_probe import MySQLLedgerProbe
from shared.adapters.mysql import MySQLConnector
from shared.adapters.s3 import S3DocumentsBucket
from shared.config import HealthSettings, get_health_settings


def build_service(settings: HealthSettings) -> HealthService:
    timeout = settings.check_timeout_seconds
    config = aws.probe_config(timeout)
    region = settings.aws_region
    secrets = aws.client("secretsmanager", region, config=config)
    writer = MySQLConnector.from_settings(settings, provider=SecretsProvider(boto3_client=secrets))
    role_check, checks = health_checks(
        ledger=MySQLLedgerProbe(writer, timeout=timeout),
        # This region's own cluster: a passive region's answer never crosses to the other one.
        replica=MySQLHeartbeat(writer.at(*settings.own_reader()), timeout=timeout),
        # No gate cache: the whole report is cached instead, and a check must really read.
        gate=DynamoRegionGate(
            aws.client("dynamodb", region, config=config),
            settings.region_control_table,
            region,
            cache_seconds=0,
        ),
        documents=S3DocumentsBucket(aws.client("s3", region, config=config), settings.docs_bucket),
        replica_lag_threshold_seconds=settings.replica_lag_threshold_seconds,
    )
    return HealthService(
        role_check=role_check,
        checks=checks,
        budget_seconds=settings.budget_seconds,
        check_timeout_seconds=timeout,
        cache_seconds=settings.cache_seconds,
    )


@lru_cache(maxsize=1)
def get_service() -> HealthService:
    return build_service(get_health_settings())
