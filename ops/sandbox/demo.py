"""`demo`: every sample event through the primary region's bus, one at a time. The rule (the
pattern template.yaml declares) decides what reaches the function; what it delivers to its
stand-in queue is handed to the real handler, in-process, exactly as `invoke` runs it. Then the
ledger's totals per currency and the depths of the rejected and standby queues.

The demo starts from an empty ledger, sessions table and queues, so it tells the same story on
every run (`--no-reset` keeps what is there: the charges then come back DUPLICATE).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ops.sandbox import invoke, lifecycle, resources
from ops.sandbox.state import ROOT, Paths, State

EVENTS = ROOT / "events"
FUNCTION = "PaymentProcessorFunction"  # the rule's target
ROLE = "primary"
NOT_ROUTED = "NOT ROUTED"
REASON_WIDTH = 60

Out = Callable[[str], None]


@dataclass(frozen=True)
class Row:
    event: str
    payment_id: str
    outcome: str
    reason: str


def run(paths: Paths, out: Out, *, reset: bool = True) -> int:
    runner = invoke.runner(paths, FUNCTION, ROLE)  # checks the sandbox is up
    state = State.load(paths)
    assert state is not None
    aws, region = state.aws[ROLE], state.regions[ROLE]
    if reset:
        reset_sandbox(state, paths)
        out(
            "demo: ledger, sessions tables and queues emptied, us-east-1 set active "
            "(every run starts from the same state)"
        )
    samples = bus_events()
    out(
        f"demo: {len(samples)} events -> bus {aws['bus']} ({region}); "
        f"rule {aws['rule']} decides what reaches {FUNCTION}; "
        f"handler logs -> {lifecycle.relative(paths.demo_log)}"
    )
    events = lifecycle.client(state, "events", region)
    sqs = lifecycle.client(state, "sqs", region)
    rows: list[Row] = []
    with open(paths.demo_log, "a") as log, redirect_stderr(log):
        log.write(f"--- demo {datetime.now(UTC).isoformat(timespec='seconds')} ---\n")
        for name, event in samples:
            delivered = _publish(events, sqs, aws, event)
            if not delivered:
                rows.append(
                    Row(
                        name,
                        _claimed_id(event),
                        NOT_ROUTED,
                        f"no rule matches (detail-type {event.get('detail-type')!r})",
                    )
                )
            for message in delivered:
                rows.append(_handle(runner, name, message, log))
    out("")
    out(_table(["EVENT", "PAYMENT_ID", "OUTCOME", "REASON"], [_cells(r) for r in rows]))
    balanced = _totals(state, paths, out)
    queue_names = resources.queue_names(ROLE, state.env)
    rejected = _depth(sqs, aws["queue_urls"]["rejected"])
    standby = _depth(sqs, aws["queue_urls"]["standby"])
    out("")
    out(
        f"rejected queue {queue_names['rejected']}: {rejected} events "
        "(REJECTED and CONFLICT ones, each with its reason, for a person)"
    )
    out(
        f"standby queue {queue_names['standby']}: {standby} events "
        "(PARKED ones: valid, set aside for `drctl redrive`)"
    )
    if reset:
        out(
            "note: every demo starts from an empty ledger, so it always shows this table. Sent "
            "again to the same ledger a payment is answered DUPLICATE, with no second write: "
            "try `make invoke FN=PaymentProcessorFunction EVENT=events/01_charge_usd.json` now."
        )
    else:
        out(
            "note: the ledger was kept (--no-reset): payments it already holds are answered "
            "DUPLICATE, with no second write. That is the idempotency guarantee at work."
        )
    return 0 if balanced else 1


# EventBridge's own events (a schedule's "Scheduled Event") come from no producer: the
# replication monitor's schedule sample is for `make invoke`, not for the bus.
AWS_SOURCES = ("aws.",)


def bus_events() -> list[tuple[str, dict[str, Any]]]:
    """The sample events a producer puts on the bus, by file name. events/ also holds other
    triggers' events (the health Function URL's, the monitor's schedule), which the bus never
    sees."""
    samples = []
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if "detail-type" in event and not str(event.get("source", "")).startswith(AWS_SOURCES):
            samples.append((path.name, dict(event)))
    return samples


def _publish(events: Any, sqs: Any, aws: dict[str, Any], event: dict[str, Any]) -> list[Any]:
    """Put one event on the bus and drain what the rule delivered to the stand-in queue."""
    response = events.put_events(
        Entries=[
            {
                "EventBusName": aws["bus"],
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event.get("resources", []),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"put_events refused the event: {response['Entries']}")
    delivered: list[Any] = []
    while True:
        # moto delivers to rule targets inside put_events, so there is nothing to wait for.
        batch = sqs.receive_message(
            QueueUrl=aws["inbox_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return delivered
        for message in batch:
            delivered.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=aws["inbox_url"], ReceiptHandle=message["ReceiptHandle"])


def _handle(runner: invoke.FunctionRunner, name: str, message: Any, log: Any) -> Row:
    try:
        response = runner(message, output=log)
    except Exception as exc:  # noqa: BLE001 - shown in the table; Lambda would retry it
        return Row(name, _claimed_id(message), "ERROR", f"{type(exc).__name__}: {exc}")
    return Row(
        name,
        str(response.get("payment_id") or "-"),
        str(response.get("outcome")),
        str(response.get("reason") or ""),
    )


def _claimed_id(event: Any) -> str:
    detail = event.get("detail") if isinstance(event, dict) else None
    value = detail.get("payment_id") if isinstance(detail, dict) else None
    return str(value) if value else "-"


def _cells(row: Row) -> list[str]:
    reason = row.reason
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 3] + "..."
    return [row.event, row.payment_id, row.outcome, reason]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    head = "  ".join(h.ljust(widths[i]) for i, h in enumerate(header)).rstrip()
    return "\n".join([head, *lines])


def money(minor: int, currency: str) -> str:
    """Minor units in the currency's own exponent (JPY 0, USD 2, BHD 3)."""
    from payment_processor.models import CURRENCY_EXPONENTS

    exponent = CURRENCY_EXPONENTS.get(currency, 0)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def _totals(state: State, paths: Paths, out: Out) -> bool:
    with lifecycle.mariadb(state, paths).root(lifecycle.DB_NAME) as conn, conn.cursor() as cur:
        cur.execute("SELECT currency, SUM(amount_minor) FROM ledger_entries GROUP BY currency")
        entries = {currency: int(total) for currency, total in cur.fetchall()}
        cur.execute(
            "SELECT currency,"
            " COALESCE(SUM(CASE WHEN type = 'CHARGE' THEN amount_minor END), 0),"
            " COALESCE(SUM(CASE WHEN type = 'REFUND' THEN amount_minor END), 0)"
            " FROM payments GROUP BY currency ORDER BY currency"
        )
        payments = cur.fetchall()
    out("")
    out("ledger totals per currency (SUM of ledger_entries.amount_minor must be 0):")
    rows = []
    for currency, charges, refunds in payments:
        entries_sum = entries.get(currency, 0)
        rows.append(
            [
                currency,
                money(int(charges), currency),
                money(int(refunds), currency),
                money(int(charges) - int(refunds), currency),
                f"{entries_sum} ({'balanced' if entries_sum == 0 else 'UNBALANCED'})",
            ]
        )
    out(_table(["CURRENCY", "CHARGES", "REFUNDS", "NET", "ENTRIES SUM"], rows))
    return all(total == 0 for total in entries.values())


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def reset_sandbox(state: State, paths: Paths) -> None:
    """Empty ledger, tables and queues; us-east-1 active (demo and sam_local check start here)."""
    with lifecycle.mariadb(state, paths).root(lifecycle.DB_NAME) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ledger_entries")
        cur.execute("DELETE FROM payments")
    for role, region in state.regions.items():
        dynamodb = lifecycle.client(state, "dynamodb", region)
        for definition in resources.table_definitions(state.env):
            _empty_table(dynamodb, definition)
        # Harness emulation of the global table: the control item is written in each region.
        resources.seed_active_region(dynamodb, state.env, state.regions["primary"])
        sqs = lifecycle.client(state, "sqs", region)
        aws = state.aws[role]
        for url in [*aws["queue_urls"].values(), aws["inbox_url"]]:
            _empty_queue(sqs, url)


def _empty_queue(sqs: Any, url: str) -> None:
    """PurgeQueue, or message by message when SQS allows no second purge within 60 s (two
    resets in a row: `make demo` twice, `sam_local check`)."""
    try:
        sqs.purge_queue(QueueUrl=url)
        return
    except sqs.exceptions.PurgeQueueInProgress:
        pass
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def _empty_table(dynamodb: Any, definition: dict[str, Any]) -> None:
    keys = [k["AttributeName"] for k in definition["KeySchema"]]
    names = {f"#k{i}": key for i, key in enumerate(keys)}
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=definition["TableName"],
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
    ):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=definition["TableName"], Key=item)
