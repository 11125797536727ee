"""Pages of ledger rows processed since a moment, in payment_id order (keyset paging), for
`drctl reconcile`: the ledger sits in private subnets, the operator outside the VPC, so the
comparison with the sessions table happens in drctl and only the reading happens here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import msgspec
from msgspec import Meta, Struct

from ledger_export import records
from shared.records import PaymentRecord


class ExportRequest(Struct, frozen=True, forbid_unknown_fields=True):
    since: datetime  # aware (RFC 3339 with zone)
    after: Annotated[str, Meta(max_length=64)] = ""  # the last payment_id of the previous page
    limit: Annotated[int, Meta(gt=0)] = 1000


class LedgerRows(Protocol):
    def page(self, *, since: datetime, after: str, limit: int) -> list[PaymentRecord]:
        """Rows with processed_at >= since and payment_id > after, by payment_id, at most limit."""
        ...


def export(event: Any, rows: LedgerRows, *, max_page: int) -> dict[str, Any]:
    """{"records": [...], "next": <cursor or null>} or {"error": <why the request is invalid>}."""
    try:
        request = msgspec.convert(event, ExportRequest)
    except msgspec.ValidationError as exc:
        return {"error": f"invalid request: {exc}"}
    if request.since.tzinfo is None:
        return {"error": "invalid request: since needs a time zone"}
    limit = min(request.limit, max_page)
    found = rows.page(since=request.since.astimezone(UTC), after=request.after, limit=limit)
    return {
        "records": [records.to_json(record) for record in found],
        "next": found[-1].payment_id if len(found) == limit else None,
    }
