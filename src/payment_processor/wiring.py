"""Composition root: real adapters built once per execution environment, on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from payment_processor.ports import LedgerStore, Sessions
from payment_processor.service import PaymentService
from shared.adapters import aws
from shared.adapters.dynamodb import DynamoRegionGate, DynamoSessions
from shared.adapters.ledger import MySQLLedger
from shared.adapters.mysql import MySQLConnector
from shared.adapters.parking import SqsParkingLot
from shared.config import ProcessorSettings, get_processor_settings


def build_ledger(settings: ProcessorSettings) -> MySQLLedger:
    # The secret is read with the write path's client, so its retries honour the deadline too.
    secrets = SecretsProvider(boto3_client=aws.client("secretsmanager", settings.aws_region))
    return MySQLLedger(MySQLConnector.from_settings(settings, provider=secrets))


def build_service(
    settings: ProcessorSettings,
    *,
    dynamodb: Any = None,
    ledger: LedgerStore | None = None,
    sessions: Sessions | None = None,
    **options: Any,
) -> PaymentService:
    """The real service; tests may hand in their own client, ledger or sessions (faults), and
    PaymentService options (a clock)."""
    dynamodb = dynamodb or aws.client("dynamodb", settings.aws_region)
    sqs = aws.client("sqs", settings.aws_region)
    return PaymentService(
        ledger=ledger or build_ledger(settings),
        sessions=sessions or DynamoSessions(dynamodb, settings.sessions_table),
        region_gate=DynamoRegionGate(
            dynamodb,
            settings.region_control_table,
            settings.aws_region,
            cache_seconds=settings.region_gate_cache_seconds,
        ),
        parking=SqsParkingLot(
            sqs,
            standby_queue_url=settings.standby_queue_url,
            rejected_queue_url=settings.rejected_queue_url,
            region=settings.aws_region,
        ),
        max_amount_minor=settings.max_amount_minor,
        region=settings.aws_region,
        refund_charge_wait_seconds=settings.refund_charge_wait_seconds,
        **options,
    )


@lru_cache(maxsize=1)
def get_service() -> PaymentService:
    return build_service(get_processor_settings())
