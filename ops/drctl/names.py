"""Names fixed by the contract, defined once in src/shared/names.py (functions, drctl and the
sandbox share them); re-exported here for drctl's modules."""

from __future__ import annotations

from shared.names import (
    PROCESSOR_ALIAS,
    Queue,
    app_secret,
    cluster,
    documents_bucket,
    documents_bucket_pattern,
    event_bus,
    event_rule,
    global_cluster,
    health_function,
    lambda_security_group_parameter,
    ledger_export_function,
    master_secret,
    processor_function,
    queue,
    queues,
    region_control_table,
    regional_stack,
    rotation_function,
    schema_migration_function,
    sessions_table,
    tables,
    writer_endpoint_parameter,
)
from shared.region_control import NO_REGION as FENCED

__all__ = [
    "FENCED",
    "PROCESSOR_ALIAS",
    "Queue",
    "app_secret",
    "cluster",
    "documents_bucket",
    "documents_bucket_pattern",
    "event_bus",
    "event_rule",
    "global_cluster",
    "health_function",
    "lambda_security_group_parameter",
    "ledger_export_function",
    "master_secret",
    "processor_function",
    "queue",
    "queues",
    "region_control_table",
    "regional_stack",
    "rotation_function",
    "schema_migration_function",
    "sessions_table",
    "tables",
    "writer_endpoint_parameter",
]
