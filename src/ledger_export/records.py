"""A ledger row as JSON: what LedgerExportFunction returns and `drctl reconcile` reads back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared.records import PaymentRecord

_TIMES = ("occurred_at", "processed_at")


def to_json(record: PaymentRecord) -> dict[str, Any]:
    data = asdict(record)
    for name in _TIMES:
        data[name] = data[name].isoformat().replace("+00:00", "Z")
    return data


def from_json(data: dict[str, Any]) -> PaymentRecord:
    values = dict(data)
    for name in _TIMES:
        values[name] = datetime.fromisoformat(str(values[name]).replace("Z", "+00:00"))
    return PaymentRecord(**values)
