"""Composition root: real adapters built once per execution environment, on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from payment_processor.ports import Ledger, Sessions
from payment_processor.service import PaymentService
from shared.adapters import aws
from shared.adapters.dynamodb import DynamoRegionGate, DynamoSessions
from shared.adapters.ledger import MySQLLedger
from shared.adapters.parking import SqsParkingLot
from shared.config import ProcessorSettings, get_processor_settings


def build_service(
    settings: ProcessorSettings,
    *,
    dynamodb: Any = None,
    ledger: Ledger | None = None,
    sessions: Sessions | None = None,
) -> PaymentService:
    """The real service; tests may hand in their own client, ledger or sessions (faults)."""
    dynamodb = dynamodb or aws.client("dynamodb", settings.aws_region)
    sqs = aws.client("sqs", settings.aws_region)
    return PaymentService(
        ledger=ledger or MySQLLedger.from_settings(settings, settings.aws_region),
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
    )


@lru_cache(maxsize=1)
def get_service() -> PaymentService:
    return build_service(get_processor_settings())
