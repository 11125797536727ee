"""Fencing: stop a region from taking payment writes, and lift it again.

Three independent locks: the region-control item says another region (or none) is active, the
payment event rule is disabled, and the processor's reserved concurrency is 0 (in-flight
invocations finish; no new ones start). Behind them, Aurora itself: only the writer cluster
accepts writes. The rule is the one lossy lock (a disabled rule drops events, a throttled
processor's events wait in Lambda's queue): only a failover, whose failed region is cut off
anyway, and teardown disable it; planned changes hold the processor at 0 instead. Every call
tolerates the resource being absent; with `bounded=True` (a region that may be down) every call
is one short attempt and a failure is noted, not raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import control, names
from ops.drctl.context import Context
from ops.drctl.template import load_template
from shared.region_control import NO_REGION

_MISSING = {"ResourceNotFoundException"}
DEFAULT_RESERVED_CONCURRENCY = 25  # template.yaml ProcessorReservedConcurrency default


def _absent(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def _attempt(label: str, call: Callable[[], str], *, bounded: bool) -> str:
    """`label: what happened`; with bounded, an unreachable region is reported, not raised."""
    try:
        return f"{label}: {call()}"
    except ClientError as exc:
        if _absent(exc):
            return f"{label}: absent"
        if not bounded:
            raise
        return f"{label}: FAILED ({exc.response.get('Error', {}).get('Code', 'error')})"
    except BotoCoreError as exc:
        if not bounded:
            raise
        return f"{label}: UNREACHABLE ({type(exc).__name__})"


def disable_event_rule(ctx: Context, role: str, region: str, *, bounded: bool = False) -> str:
    def call() -> str:
        ctx.aws.client("events", region, bounded=bounded).disable_rule(
            Name=names.event_rule(role, ctx.env), EventBusName=names.event_bus(ctx.env)
        )
        return "disabled"

    return _attempt(f"{region}: event rule", call, bounded=bounded)


def stop_processor(ctx: Context, role: str, region: str, *, bounded: bool = False) -> str:
    def call() -> str:
        ctx.aws.client("lambda", region, bounded=bounded).put_function_concurrency(
            FunctionName=names.processor_function(role, ctx.env), ReservedConcurrentExecutions=0
        )
        return "reserved concurrency 0"

    return _attempt(f"{region}: processor", call, bounded=bounded)


def fence_region(ctx: Context, role: str, region: str, *, bounded: bool) -> list[str]:
    """Rule off, processor at 0 (the control item is moved by the caller, for every region)."""
    return [
        disable_event_rule(ctx, role, region, bounded=bounded),
        stop_processor(ctx, role, region, bounded=bounded),
    ]


def _deployed_concurrency(ctx: Context, role: str, region: str) -> int | None:
    cfn = ctx.aws.client("cloudformation", region)
    try:
        stack = cfn.describe_stacks(StackName=names.regional_stack(role, ctx.env))["Stacks"][0]
    except ClientError:
        return None
    for parameter in stack.get("Parameters", []):
        if parameter.get("ParameterKey") == "ProcessorReservedConcurrency":
            value = str(parameter.get("ParameterValue", ""))
            return int(value) if value.isdigit() and int(value) > 0 else None
    return None


def _template_concurrency(ctx: Context) -> int:
    path = ctx.plan_path.parent.parent / "template.yaml"
    if path.is_file():
        declared = load_template(path).parameters.get("ProcessorReservedConcurrency")
        if declared is not None and str(declared.default or "").isdigit():
            return int(str(declared.default))
    return DEFAULT_RESERVED_CONCURRENCY


def restore_concurrency(ctx: Context, role: str, region: str) -> int:
    """What the stack was deployed with (its ProcessorReservedConcurrency), else the template's."""
    return _deployed_concurrency(ctx, role, region) or _template_concurrency(ctx)


def enable_event_rule(ctx: Context, role: str, region: str) -> str:
    """The rule on again (idempotent). A disabled rule DROPS the events it would have delivered
    (EventBridge keeps nothing for it): a region's rule may be off only while the other
    region's is on, so that every event still reaches one of them by the global endpoint's
    replication. A processor held at reserved concurrency 0 loses nothing: Lambda keeps
    throttled events and retries them (up to the function's maximum event age)."""
    events = ctx.aws.client("events", region)
    rule, bus = names.event_rule(role, ctx.env), names.event_bus(ctx.env)
    try:
        state = events.describe_rule(Name=rule, EventBusName=bus).get("State")
        if state == "ENABLED":
            return f"{region}: event rule already enabled"
        events.enable_rule(Name=rule, EventBusName=bus)
        return f"{region}: event rule enabled"
    except ClientError as exc:
        if not _absent(exc):
            raise
        return f"{region}: event rule absent"


def unfence_region(ctx: Context, role: str, region: str) -> list[str]:
    """Rule on and processor concurrency back, if they were fenced (idempotent)."""
    notes = [enable_event_rule(ctx, role, region)]
    lam = ctx.aws.client("lambda", region)
    function = names.processor_function(role, ctx.env)
    try:
        reserved = lam.get_function_concurrency(FunctionName=function).get(
            "ReservedConcurrentExecutions"
        )
        if reserved == 0:
            value = restore_concurrency(ctx, role, region)
            lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=value)
            notes.append(f"{region}: processor reserved concurrency {value}")
        else:
            notes.append(f"{region}: processor not fenced (reserved concurrency {reserved})")
    except ClientError as exc:
        if not _absent(exc):
            raise
        notes.append(f"{region}: processor absent")
    return notes


def fence_state(ctx: Context, role: str, region: str) -> dict[str, Any]:
    """For `status` (bounded): is the rule enabled, what is the processor's concurrency."""
    state: dict[str, Any] = {}
    try:
        state["rule"] = (
            ctx.aws.client("events", region, bounded=True)
            .describe_rule(
                Name=names.event_rule(role, ctx.env), EventBusName=names.event_bus(ctx.env)
            )
            .get("State", "?")
        )
    except ClientError as exc:
        state["rule"] = "absent" if _absent(exc) else f"error {exc.response['Error']['Code']}"
    except BotoCoreError as exc:
        state["rule"] = f"unreachable ({type(exc).__name__})"
    try:
        answer = ctx.aws.client("lambda", region, bounded=True).get_function_concurrency(
            FunctionName=names.processor_function(role, ctx.env)
        )
        reserved = answer.get("ReservedConcurrentExecutions")
        state["processor_concurrency"] = "unreserved" if reserved is None else reserved
    except ClientError as exc:
        state["processor_concurrency"] = (
            "absent" if _absent(exc) else f"error {exc.response['Error']['Code']}"
        )
    except BotoCoreError as exc:
        state["processor_concurrency"] = f"unreachable ({type(exc).__name__})"
    return state


def fence_all(ctx: Context, regions_by_role: dict[str, str], actor: str) -> None:
    """Fence both regions (teardown): no region active, every rule off, every processor at 0."""
    regions = list(regions_by_role.values())
    readings = control.read_all(ctx, regions, bounded=False)
    present = [reading.region for reading in readings if reading.answered]
    for reading in readings:
        if not reading.answered:
            ctx.console.progress(f"    {reading.region}: no region-control table")
    if present:
        moved = control.move(
            ctx, NO_REGION, must=present[0], also=present[1:], actor=actor, readings=readings
        )
        for note in moved.notes:
            ctx.console.progress(f"    region-control {note}")
    for role, region in regions_by_role.items():
        for note in fence_region(ctx, role, region, bounded=False):
            ctx.console.progress(f"    {note}")
