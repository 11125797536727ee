"""The regional functions as drctl uses them: invoked synchronously (the processor's `live`
alias for redrive, the health check for status, the ledger export for reconcile, the schema
migration for deploy), and pointed at a new database host after a detach-and-promote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl import names
from ops.drctl.context import Context

# What Route 53 sends the health check's Function URL, reduced to what it reads.
HEALTH_PROBE = {
    "version": "2.0",
    "rawPath": "/",
    "headers": {"user-agent": "drctl status"},
    "requestContext": {
        "requestId": "drctl-status",
        "http": {"method": "GET", "path": "/", "userAgent": "drctl status"},
    },
    "isBase64Encoded": False,
}


@dataclass(frozen=True)
class Invocation:
    payload: Any
    error: str | None = None  # the function raised (Lambda's FunctionError + errorType)


def invoke(
    ctx: Context,
    region: str,
    function: str,
    payload: Any,
    *,
    qualifier: str | None = None,
    bounded: bool = False,
    long_call: bool = False,
) -> Invocation:
    arguments: dict[str, Any] = {
        "FunctionName": function,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(payload).encode(),
    }
    if qualifier:
        arguments["Qualifier"] = qualifier
    client = ctx.aws.client("lambda", region, bounded=bounded, long_call=long_call)
    answer = client.invoke(**arguments)
    raw = answer["Payload"].read()
    data = json.loads(raw) if raw else None
    if answer.get("FunctionError"):
        kind = data.get("errorType") if isinstance(data, dict) else None
        return Invocation(data, f"{answer['FunctionError']}: {kind or 'error'}")
    return Invocation(data)


def invoke_processor(ctx: Context, role: str, region: str, event: Any) -> Invocation:
    return invoke(
        ctx,
        region,
        names.processor_function(role, ctx.env),
        event,
        qualifier=names.PROCESSOR_ALIAS,
    )


def _set_db_host(ctx: Context, region: str, function: str, host: str) -> bool:
    lam = ctx.aws.client("lambda", region)
    try:
        configuration = lam.get_function_configuration(FunctionName=function)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    variables = dict(configuration.get("Environment", {}).get("Variables", {}))
    if variables.get("DB_HOST") == host:
        return False
    variables["DB_HOST"] = host
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=function, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
    )
    return True


def repoint_db_host(ctx: Context, role: str, region: str, host: str) -> list[str]:
    """After detach-and-promote the global writer endpoint no longer leads to the new writer:
    the SSM parameter (what the next deploy uses) and the running functions get its own endpoint.
    The processor is invoked through `live`, whose version's configuration is immutable: a new
    version is published and `live` moved to it."""
    notes = []
    ssm = ctx.aws.client("ssm", region)
    ssm.put_parameter(
        Name=names.writer_endpoint_parameter(ctx.env), Value=host, Type="String", Overwrite=True
    )
    notes.append(f"{region}: {names.writer_endpoint_parameter(ctx.env)} = {host}")
    lam = ctx.aws.client("lambda", region)
    processor = names.processor_function(role, ctx.env)
    if _set_db_host(ctx, region, processor, host):
        version = lam.publish_version(FunctionName=processor, Description=f"drctl: DB_HOST {host}")[
            "Version"
        ]
        lam.update_alias(
            FunctionName=processor, Name=names.PROCESSOR_ALIAS, FunctionVersion=version
        )
        notes.append(f"{region}: {processor} DB_HOST -> {host}, `live` -> version {version}")
    for function in (
        names.health_function(role, ctx.env),
        names.ledger_export_function(role, ctx.env),
        names.schema_migration_function(role, ctx.env),
    ):
        if _set_db_host(ctx, region, function, host):
            notes.append(f"{region}: {function} DB_HOST -> {host}")
    return notes
