"""`drctl status`: where an environment stands, in one view, read only.

Every call is bounded (one attempt, a few seconds), so a region that is down shows as such
instead of hanging the command. Per region: its replica of the region-control item, its health
(the HealthFunction, invoked as Route 53's probe would call its URL: the same checks, the same
answer), its Aurora cluster's role, each store's replication lag INTO it (the replication
monitor's metrics, shared/metric_names.py), the depths of its four queues, its fence (rule
state, processor reserved concurrency) and its secrets (primary copy or replica, rotation).
`--json` prints the same as one JSON document.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import aurora, control, credentials, fence, functions, names
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK
from shared import metric_names
from shared.names import Queue

LAG_WINDOW = timedelta(minutes=10)


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"error {exc.response.get('Error', {}).get('Code', '?')}"
    return f"unreachable ({type(exc).__name__})"


def health(ctx: Context, role: str, region: str) -> str:
    try:
        answer = functions.invoke(
            ctx, region, names.health_function(role, ctx.env), functions.HEALTH_PROBE, bounded=True
        )
    except (ClientError, BotoCoreError) as exc:
        return _error(exc)
    if answer.error is not None:
        return f"ERROR ({answer.error})"
    payload = answer.payload if isinstance(answer.payload, dict) else {}
    return f"{payload.get('body', '?')} ({payload.get('statusCode', '?')})"


def queue_depths(ctx: Context, role: str, region: str) -> dict[str, Any]:
    sqs = ctx.aws.client("sqs", region, bounded=True)
    depths: dict[str, Any] = {}
    for purpose in Queue:
        try:
            url = sqs.get_queue_url(QueueName=names.queue(purpose, role, ctx.env))["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths[purpose.value] = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        except (ClientError, BotoCoreError) as exc:
            depths[purpose.value] = _error(exc)
    return depths


def lags(ctx: Context) -> dict[str, dict[str, Any]]:
    """By region, each store's lag INTO it (seconds): the newest Maximum of the replication
    monitor's figures wherever they were measured (shared/metric_names.py: the ledger's
    end-to-end canary and the sessions/documents figures are published in the source region,
    Aurora's own figure in the receiving one), the end-to-end canary first, else what AWS
    reports; None without data; an error text when no region's CloudWatch answered. One bounded
    GetMetricData per region, so a dead region costs one attempt."""
    regions = list(ctx.region_roles().values())
    end = ctx.now()
    wanted = [
        (region, store, metric)
        for region in regions
        for store in metric_names.Store
        for metric in (metric_names.CANARY_LAG, metric_names.REPLICATION_LAG)
    ]
    newest: dict[tuple[str, str, str], tuple[Any, float]] = {}
    errors: list[str] = []
    for source in regions:
        try:
            results = ctx.aws.client("cloudwatch", source, bounded=True).get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": f"q{index}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": metric_names.NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": metric_names.dimensions(ctx.env, store, region),
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                    }
                    for index, (region, store, metric) in enumerate(wanted)
                ],
                StartTime=end - LAG_WINDOW,
                # A period past now: the current, partial minute's datapoints count too.
                EndTime=end + timedelta(minutes=1),
            )["MetricDataResults"]
        except (ClientError, BotoCoreError) as exc:
            errors.append(_error(exc))
            continue
        for result in results:
            key = wanted[int(result["Id"][1:])]
            stamps, values = result.get("Timestamps", []), result.get("Values", [])
            for stamp, value in zip(stamps, values, strict=True):
                if key not in newest or stamp > newest[key][0]:
                    newest[key] = (stamp, float(value))
    found: dict[str, dict[str, Any]] = {}
    for region in regions:
        found[region] = {}
        for store in metric_names.Store:
            chosen = newest.get((region, store, metric_names.CANARY_LAG)) or newest.get(
                (region, store, metric_names.REPLICATION_LAG)
            )
            if chosen is not None:
                found[region][store.value] = chosen[1]
            else:
                found[region][store.value] = errors[0] if len(errors) == len(regions) else None
    return found


def secrets(ctx: Context, region: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in credentials.secret_names(ctx.env):
        try:
            seen = credentials.view(ctx, region, name, bounded=True)
        except (ClientError, BotoCoreError) as exc:
            found[name] = _error(exc)
            continue
        if seen is None:
            found[name] = "absent"
            continue
        kind = "primary copy" if seen.holds_primary else f"replica of {seen.primary_region}"
        found[name] = f"{kind}, rotation {'on' if seen.rotation_enabled else 'off'}"
    return found


def aurora_view(ctx: Context, regions: list[str]) -> dict[str, Any]:
    identifier = names.global_cluster(ctx.env)
    for region in regions:
        try:
            view = aurora.global_view(ctx, region, identifier, bounded=True)
        except (ClientError, BotoCoreError):
            continue
        if view is None:
            return {"global_cluster": identifier, "status": "absent", "seen_from": region}
        return {
            "global_cluster": identifier,
            "status": view.status,
            "writer": view.writer.ref.identifier if view.writer else None,
            "writer_region": view.writer.ref.region if view.writer else None,
            "members": [
                {"cluster": m.ref.identifier, "region": m.ref.region, "writer": m.is_writer}
                for m in view.members
            ],
            "endpoint": view.endpoint,
            "failover_state": view.failover_state or None,
            "seen_from": region,
        }
    return {"global_cluster": identifier, "status": "unreachable from every region"}


def gather(ctx: Context) -> dict[str, Any]:
    roles = ctx.region_roles()
    readings = control.read_all(ctx, roles.values())
    current = control.newest(readings)
    answered = {(r.control.active_region, r.control.epoch) for r in readings if r.control}
    document: dict[str, Any] = {
        "env": ctx.env,
        "at": ctx.stamp(),
        "active_region": current.active_region if current else None,
        "epoch": current.epoch if current else None,
        "control_replicas_agree": len(answered) <= 1,
        "aurora": aurora_view(ctx, list(roles.values())),
        "regions": {},
    }
    lag = lags(ctx)
    for role, region in roles.items():
        reading = next(r for r in readings if r.region == region)
        document["regions"][region] = {
            "role": role,
            "control": reading.describe(),
            "health": health(ctx, role, region),
            "lag_seconds": lag[region],
            "queues": queue_depths(ctx, role, region),
            "fence": fence.fence_state(ctx, role, region),
            "secrets": secrets(ctx, region),
        }
    return document


def render(document: dict[str, Any]) -> list[str]:
    lines = [
        f"env {document['env']} at {document['at']}: active region "
        f"{document['active_region'] or 'NONE'} (epoch {document['epoch']})"
        + ("" if document["control_replicas_agree"] else "  [replicas disagree]"),
    ]
    db = document["aurora"]
    lines.append(
        f"aurora {db['global_cluster']}: {db['status']}, writer {db.get('writer')} "
        f"({db.get('writer_region')}), endpoint {db.get('endpoint')}"
    )
    for region, seen in document["regions"].items():
        lag = ", ".join(
            f"{store} {'no data' if value is None else value}"
            for store, value in seen["lag_seconds"].items()
        )
        queues = ", ".join(f"{name} {depth}" for name, depth in seen["queues"].items())
        fenced = seen["fence"]
        lines += [
            f"{region} ({seen['role']})",
            f"  control   {seen['control']}",
            f"  health    {seen['health']}",
            f"  lag (s)   {lag}",
            f"  queues    {queues}",
            f"  fence     rule {fenced['rule']}, processor concurrency "
            f"{fenced['processor_concurrency']}",
        ]
        lines += [f"  secret    {name}: {state}" for name, state in seen["secrets"].items()]
    return lines


def run(ctx: Context, *, as_json: bool = False) -> int:
    document = gather(ctx)
    if as_json:
        ctx.console.result(json.dumps(document, indent=2, default=str))
    else:
        for line in render(document):
            ctx.console.result(line)
    return EXIT_OK
