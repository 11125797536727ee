"""Typed settings, read from the environment on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    """What every function of the regional stack is told about where it runs."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    environment: str = Field(alias="ENVIRONMENT")
    region_role: Literal["primary", "secondary"] = Field(alias="REGION_ROLE")
    aws_region: str = Field(validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    region_control_table: str = Field(alias="REGION_CONTROL_TABLE")


class LedgerSettings(BaseModel):
    """How to reach the Aurora ledger as the application user."""

    db_host: str = Field(alias="DB_HOST")
    db_port: int = Field(default=3306, alias="DB_PORT")
    db_name: str = Field(default="payments", alias="DB_NAME")
    db_secret_id: str = Field(alias="DB_SECRET_ID")
    db_tls: bool = Field(default=True, alias="DB_TLS")
    # Optional CA bundle (e.g. the RDS global bundle packaged with the function) to verify the
    # Aurora server certificate; without it the connection is encrypted with the system CAs.
    db_tls_ca_file: str | None = Field(default=None, alias="DB_TLS_CA_FILE")
    secret_max_age_seconds: int = Field(default=300, alias="SECRET_MAX_AGE_SECONDS", ge=0)


class ProcessorSettings(FunctionSettings, LedgerSettings):
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    parked_queue_url: str = Field(alias="PARKED_QUEUE_URL")
    max_amount_minor: int = Field(default=100_000_000, alias="MAX_AMOUNT_MINOR", gt=0)
    # How long the region-control item is trusted; Aurora's read-only answer is the hard fence.
    region_gate_cache_seconds: float = Field(default=5.0, alias="REGION_GATE_CACHE_SECONDS", ge=0)
    # Seconds kept back from the Lambda deadline so the invocation fails cleanly, not killed.
    deadline_margin_seconds: float = Field(default=2.0, alias="DEADLINE_MARGIN_SECONDS", ge=0)


@lru_cache(maxsize=1)
def get_processor_settings() -> ProcessorSettings:
    return ProcessorSettings.model_validate(dict(os.environ))


class HealthSettings(FunctionSettings, LedgerSettings):
    """HealthFunction: what it checks, and how long it may take (Route 53 waits 2 s)."""

    docs_bucket: str = Field(alias="DOCS_BUCKET")
    # All checks run at once and the answer is due within this budget, whatever hangs: Route 53
    # counts a reply later than 2 s as a failure, and Lambda + the URL need some of that time.
    budget_seconds: float = Field(default=1.2, alias="HEALTH_BUDGET_SECONDS", gt=0, lt=2.0)
    # Each check's own limit (capped by the budget); also its SDK and MySQL socket timeouts.
    check_timeout_seconds: float = Field(default=1.0, alias="HEALTH_CHECK_TIMEOUT_SECONDS", gt=0)
    # One answer serves every probe for this long, per execution environment: Route 53 probes
    # from many checkers, and each probe must not mean another Aurora connection.
    cache_seconds: float = Field(default=5.0, alias="HEALTH_CACHE_SECONDS", ge=0)


@lru_cache(maxsize=1)
def get_health_settings() -> HealthSettings:
    return HealthSettings.model_validate(dict(os.environ))
