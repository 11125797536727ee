"""`drctl reconcile --since T`: the ledger (the truth) against the sessions table (its
replicated projection), both ways, in the active region.

Where each side is read, and why: the ledger is Aurora in private subnets and the operator is
outside the VPC, so its rows come from LedgerExportFunction (in the VPC, read only, invoked
synchronously, paged); the sessions table is DynamoDB, read by drctl directly (a consistent
scan of the active region's replica, filtered on processed_at >= T).

- in the ledger, not (or an older state) in sessions: projected again with the processor's
  own projection code (shared/adapters/dynamodb.py, conditional, idempotent).
- in sessions, not in the ledger (the ledger lost a commit that DynamoDB had replicated, e.g.
  an unplanned failover): the event is rebuilt from the sessions item and replayed through the
  active processor, but only when the rebuilt payload hashes to the item's payload_hash, i.e.
  it is provably the original (the item has no card or metadata fields); otherwise listed for a
  person with where to look (the publisher, the queues, the old region once it is back).
- in both with different payload hashes: listed (this must never happen).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger_export import records
from ops.drctl import control, functions, names
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused, UsageError
from payment_processor.models import InvalidEvent, PaymentDetail
from payment_processor.ports import PaymentRecord
from shared.adapters.dynamodb import DynamoSessions

PAGE = 1000


def parse_since(text: str, now: datetime) -> datetime:
    """An RFC 3339 time (2026-11-30T04:00:00Z) or a span back from now: 90m, 6h, 2d."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--since {text}: use 2026-11-30T04:00:00Z or 90m / 6h / 2d") from exc
    if moment.tzinfo is None:
        raise UsageError(f"--since {text}: give a time zone (e.g. Z)")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class ReconcileResult:
    region: str
    since: str
    ledger_rows: int = 0
    sessions_items: int = 0
    projected: list[str] = field(default_factory=list)
    replayed: Counter[str] = field(default_factory=Counter)
    replayed_ids: list[str] = field(default_factory=list)
    unresolved: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "since": self.since,
            "ledger_rows": self.ledger_rows,
            "sessions_items": self.sessions_items,
            "projected": self.projected,
            "replayed": dict(self.replayed),
            "replayed_ids": self.replayed_ids,
            "unresolved": [{"payment_id": pid, "why": why} for pid, why in self.unresolved],
        }

    def lines(self) -> list[str]:
        replayed = ", ".join(f"{k} {v}" for k, v in sorted(self.replayed.items())) or "none"
        text = [
            f"reconcile {self.region} since {self.since}: {self.ledger_rows} ledger rows, "
            f"{self.sessions_items} sessions items",
            f"  ledger -> sessions: {len(self.projected)} projected again",
            f"  sessions -> ledger: replayed {replayed}",
            f"  unresolved: {len(self.unresolved)}",
        ]
        text += [f"    {pid}: {why}" for pid, why in self.unresolved]
        return text


def ledger_rows(ctx: Context, role: str, region: str, since: datetime) -> dict[str, PaymentRecord]:
    function = names.ledger_export_function(role, ctx.env)
    found: dict[str, PaymentRecord] = {}
    after = ""
    while True:
        answer = functions.invoke(
            ctx, region, function, {"since": _iso(since), "after": after, "limit": PAGE}
        )
        page = answer.payload if isinstance(answer.payload, dict) else {}
        if answer.error is not None or "error" in page or "records" not in page:
            raise DrctlError(
                f"{function} ({region}) did not return ledger rows: "
                f"{answer.error or page.get('error') or 'no records in its answer'}"
            )
        for data in page["records"]:
            record = records.from_json(data)
            found[record.payment_id] = record
        if not page.get("next"):
            return found
        after = str(page["next"])


def sessions_items(ctx: Context, region: str, since: datetime) -> dict[str, dict[str, Any]]:
    paginator = ctx.aws.client("dynamodb", region).get_paginator("scan")
    found: dict[str, dict[str, Any]] = {}
    for page in paginator.paginate(
        TableName=names.sessions_table(ctx.env),
        ConsistentRead=True,
        FilterExpression="processed_at >= :since",
        ExpressionAttributeValues={":since": {"S": _iso(since)}},
    ):
        for item in page.get("Items", []):
            found[item["payment_id"]["S"]] = item
    return found


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value.get("S", value.get("N")))


def rebuild_event(item: dict[str, Any], region: str) -> dict[str, Any] | None:
    """The original event from a sessions item, when its payload hash proves it is identical."""
    detail: dict[str, Any] = {
        "schema_version": "1.0",
        "payment_id": _text(item, "payment_id"),
        "type": _text(item, "type"),
        "merchant_id": _text(item, "merchant_id"),
        "customer_id": _text(item, "customer_id"),
        "amount_minor": int(_text(item, "amount_minor") or "0"),
        "currency": _text(item, "currency"),
        "occurred_at": _text(item, "occurred_at"),
    }
    original = _text(item, "original_payment_id")
    if original:
        detail["original_payment_id"] = original
    try:
        rebuilt = PaymentDetail.parse(detail)
    except InvalidEvent:
        return None
    if rebuilt.payload_hash() != _text(item, "payload_hash"):
        return None
    return {
        "version": "0",
        "id": f"drctl-reconcile-{detail['payment_id']}",
        "detail-type": "Payment Transaction",
        "source": "payment.service",
        "time": detail["occurred_at"],
        "region": region,
        "resources": [],
        "detail": detail,
    }


def _behind(item: dict[str, Any], record: PaymentRecord) -> bool:
    return int(_text(item, "refunded_minor") or "0") < record.refunded_minor


def reconcile(
    ctx: Context, role: str, region: str, since: datetime, *, fix: bool = True
) -> ReconcileResult:
    ledger = ledger_rows(ctx, role, region, since)
    sessions = sessions_items(ctx, region, since)
    result = ReconcileResult(region, _iso(since), len(ledger), len(sessions))
    projection = DynamoSessions(ctx.aws.client("dynamodb", region), names.sessions_table(ctx.env))
    for payment_id, record in sorted(ledger.items()):
        item = sessions.get(payment_id)
        if item is not None and _text(item, "payload_hash") != record.payload_hash:
            result.unresolved.append((payment_id, "ledger and sessions hold different payloads"))
        elif item is None or _behind(item, record):
            if fix:
                projection.project(record)
            result.projected.append(payment_id)
    # Refunds after their charges: a rebuilt refund whose charge is also being replayed.
    missing = sorted(
        (pid for pid in sessions if pid not in ledger),
        key=lambda pid: (_text(sessions[pid], "type") == "REFUND", pid),
    )
    for payment_id in missing:
        event = rebuild_event(sessions[payment_id], region)
        if event is None:
            result.unresolved.append(
                (
                    payment_id,
                    "in sessions, not in the ledger, and the event cannot be rebuilt exactly "
                    "(card or metadata): find it at the publisher, in the queues, or in the old "
                    "region once it is back, and redrive it",
                )
            )
            continue
        if not fix:
            result.unresolved.append((payment_id, "in sessions, not in the ledger (not fixed)"))
            continue
        answer = functions.invoke_processor(ctx, role, region, event)
        outcome = answer.payload.get("outcome") if isinstance(answer.payload, dict) else None
        if answer.error is not None or outcome not in ("PROCESSED", "DUPLICATE"):
            result.unresolved.append(
                (payment_id, f"replayed, the processor answered {answer.error or outcome}")
            )
        result.replayed[str(outcome or "FAILED")] += 1
        result.replayed_ids.append(payment_id)
    return result


@dataclass(frozen=True)
class ReconcileOptions:
    since: str
    fix: bool = True


def run(ctx: Context, options: ReconcileOptions) -> int:
    since = parse_since(options.since, ctx.now())
    roles = ctx.region_roles()
    current = control.newest(control.read_all(ctx, roles.values()))
    active = [(role, region) for role, region in roles.items() if current and current.names(region)]
    if not active:
        raise Refused("no region is active: reconcile compares the active region's ledger")
    role, region = active[0]
    export = names.ledger_export_function(role, ctx.env)
    ctx.console.step(f"reconcile {region}: ledger (via {export}) vs sessions since {_iso(since)}")
    result = reconcile(ctx, role, region, since, fix=options.fix)
    for line in result.lines():
        ctx.console.result(line)
    return EXIT_OK if not result.unresolved else 1
