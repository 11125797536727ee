"""Typed settings, read from the environment on first use (never at import).

msgspec Structs rather than pydantic models, for the same cold-start reason as the event
contract (docs/decisions.md, "Contract validation"). Each field is read from the environment
variable of its name in upper case, converted from text and checked against its bounds; a
missing or malformed variable fails the function's first invocation with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

NonNegative = Meta(ge=0)


class SettingsError(ValueError):
    """The function's environment is incomplete or malformed (a deployment error)."""


class FunctionSettings(Struct, frozen=True, kw_only=True, rename="upper"):
    """What every function of the regional stack is told about where it runs."""

    environment: str
    region_role: Literal["primary", "secondary"]
    aws_region: str


class LedgerSettings(FunctionSettings, frozen=True, kw_only=True, rename="upper"):
    """How to reach the Aurora ledger as the application user."""

    db_host: str
    db_port: int = 3306
    db_name: str = "payments"
    db_secret_id: str
    db_tls: bool = True
    # Optional CA bundle (e.g. the RDS global bundle packaged with the function) to verify the
    # Aurora server certificate; without it the connection is encrypted with the system CAs.
    db_tls_ca_file: str | None = None
    secret_max_age_seconds: Annotated[int, NonNegative] = 300


class ProcessorSettings(LedgerSettings, frozen=True, kw_only=True, rename="upper"):
    region_control_table: str
    sessions_table: str
    # Valid events this region cannot write now (passive, read-only): redriven after promotion.
    standby_queue_url: str
    # Invalid or conflicting events, with their reason: for a person.
    rejected_queue_url: str
    max_amount_minor: Annotated[int, Meta(gt=0)] = 100_000_000
    # How long the region-control item is trusted; Aurora's read-only answer is the hard fence.
    region_gate_cache_seconds: Annotated[float, NonNegative] = 5.0
    # Seconds kept back from the Lambda deadline so the invocation fails cleanly, not killed.
    deadline_margin_seconds: Annotated[float, NonNegative] = 2.0
    # A refund whose charge is not in the ledger yet fails (transient: Lambda retries it) while
    # its event is younger than this, then is parked ORIGINAL_NOT_FOUND. Lambda retries a failed
    # asynchronous invocation about 1 min and then 2 min later (MaximumRetryAttempts 2), so the
    # third attempt comes at least 180 s after the first: with this <= 150 s (and the processor's
    # 30 s allowance for a publisher's clock, service.FUTURE_TOLERANCE) the last attempt always
    # parks the refund instead of failing it into the failure destination.
    refund_charge_wait_seconds: Annotated[float, Meta(ge=0, le=150)] = 120.0


class HealthSettings(LedgerSettings, frozen=True, kw_only=True, rename="upper"):
    """HealthFunction: what it checks, and how long it may take (Route 53 waits 2 s). DB_HOST is
    the writer (checked while this region is active); DB_READER_HOST this region's own cluster's
    reader endpoint (checked while it is passive, so its answer never depends on the other
    region): "host" (on DB_PORT, as in AWS, where every cluster listens on the same port) or
    "host:port"."""

    region_control_table: str
    docs_bucket: str
    db_reader_host: str
    # A passive region is ready to take over while its copy of the ledger is at most this old
    # (the age of the newest replication heartbeat on its reader; one is written a minute).
    replica_lag_threshold_seconds: Annotated[float, Meta(gt=0)] = 180.0
    # All checks run at once and the answer is due within this budget, whatever hangs: Route 53
    # counts a reply later than 2 s as a failure, and Lambda + the URL need some of that time.
    budget_seconds: Annotated[float, Meta(gt=0, lt=2.0)] = field(
        default=1.2, name="HEALTH_BUDGET_SECONDS"
    )
    # Each check's own limit (capped by the budget); also its SDK and MySQL socket timeouts.
    check_timeout_seconds: Annotated[float, Meta(gt=0)] = field(
        default=1.0, name="HEALTH_CHECK_TIMEOUT_SECONDS"
    )
    # One answer serves every probe for this long, per execution environment: Route 53 probes
    # from many checkers, and each probe must not mean another Aurora connection.
    cache_seconds: Annotated[float, NonNegative] = field(default=5.0, name="HEALTH_CACHE_SECONDS")

    def own_reader(self) -> tuple[str, int]:
        return _endpoint(self.db_reader_host, self.db_port)


class MonitorSettings(HealthSettings, frozen=True, kw_only=True, rename="upper"):
    """ReplicationMonitorFunction: the health checks' settings (it runs them every minute too),
    plus where the canaries go and the peer region's copies are."""

    sessions_table: str
    peer_region: str
    # The peer region's cluster reader endpoint, reached over the VPC peering: "host" (port
    # DB_PORT, as in AWS, where both clusters listen on the same port) or "host:port".
    db_peer_reader_endpoint: str
    peer_docs_bucket: str
    # How long the active region's monitor waits for its heartbeat on the peer's reader before
    # it reports the age of the newest one there instead (a lower bound that keeps growing).
    canary_wait_seconds: Annotated[float, Meta(ge=0)] = field(
        default=40.0, name="MONITOR_CANARY_WAIT_SECONDS"
    )
    canary_poll_seconds: Annotated[float, Meta(gt=0)] = field(
        default=0.05, name="MONITOR_CANARY_POLL_SECONDS"
    )
    # Each probe's own limit (its SDK and MySQL timeouts too); the canary wait comes on top.
    monitor_check_timeout_seconds: Annotated[float, Meta(gt=0)] = 5.0
    # AWS metrics: the newest datapoint no older than this counts; an older one is missing.
    metric_window_seconds: Annotated[int, Meta(ge=60)] = field(
        default=300, name="MONITOR_METRIC_WINDOW_SECONDS"
    )
    # Kept back from the Lambda deadline so the figures are always published.
    deadline_margin_seconds: Annotated[float, NonNegative] = 3.0

    def peer_reader(self) -> tuple[str, int]:
        return _endpoint(self.db_peer_reader_endpoint, self.db_port)


def _endpoint(value: str, default_port: int) -> tuple[str, int]:
    """ "host" or "host:port" -> (host, port)."""
    host, _, port = value.rpartition(":")
    if host and port.isdigit():
        return host, int(port)
    return value, default_port


class LedgerExportSettings(LedgerSettings, frozen=True, kw_only=True, rename="upper"):
    """LedgerExportFunction: pages of ledger rows for `drctl reconcile` (read only)."""

    # The most rows one invocation returns (Lambda's response limit is 6 MB; a row is ~400 B).
    export_max_page: Annotated[int, Meta(gt=0, le=5000)] = 1000


class SchemaMigrationSettings(LedgerSettings, frozen=True, kw_only=True, rename="upper"):
    """SchemaMigrationFunction: DB_SECRET_ID is the MASTER user's secret here (no other function
    is given it); the application user is created with APP_SECRET_ID's name and password."""

    app_secret_id: str
    # A DDL waits this long (whole seconds) for its table's metadata lock, then fails: queued
    # behind a long transaction it would hold every payment write behind itself.
    migration_lock_wait_seconds: Annotated[int, Meta(ge=1, le=60)] = 5
    # Seconds kept back from the Lambda deadline so the function answers drctl cleanly.
    deadline_margin_seconds: Annotated[float, NonNegative] = 10.0


def load[S: FunctionSettings](kind: type[S], environ: Mapping[str, str]) -> S:
    """``kind`` from environment variables (text converted: "3306" -> 3306, "false" -> False)."""
    env = dict(environ)
    # Lambda sets AWS_REGION; tools and some shells only AWS_DEFAULT_REGION.
    if "AWS_REGION" not in env and "AWS_DEFAULT_REGION" in env:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"]
    try:
        return msgspec.convert(env, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{kind.__name__}: {exc}") from None


def environment_names(kind: type[FunctionSettings], *, required_only: bool = False) -> set[str]:
    """The environment variables ``kind`` reads (for the template-vs-code check)."""
    return {f.encode_name for f in msgspec.structs.fields(kind) if not required_only or f.required}


@lru_cache(maxsize=1)
def get_processor_settings() -> ProcessorSettings:
    return load(ProcessorSettings, os.environ)


@lru_cache(maxsize=1)
def get_health_settings() -> HealthSettings:
    return load(HealthSettings, os.environ)


@lru_cache(maxsize=1)
def get_monitor_settings() -> MonitorSettings:
    return load(MonitorSettings, os.environ)


@lru_cache(maxsize=1)
def get_ledger_export_settings() -> LedgerExportSettings:
    return load(LedgerExportSettings, os.environ)


@lru_cache(maxsize=1)
def get_schema_migration_settings() -> SchemaMigrationSettings:
    return load(SchemaMigrationSettings, os.environ)
