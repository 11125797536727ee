"""LedgerExportFunction's service: request validation and keyset paging (rows faked here; the
MariaDB reader runs under `drctl reconcile` in tests/integration/drctl)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger_export import records
from ledger_export.service import export
from payment_processor.ports import PaymentRecord

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def record(payment_id: str) -> PaymentRecord:
    return PaymentRecord(
        payment_id=payment_id,
        type="CHARGE",
        original_payment_id=None,
        merchant_id="m-1",
        customer_id="c-1",
        amount_minor=100,
        currency="USD",
        occurred_at=T0,
        processed_at=T0,
        processed_region="us-east-1",
        payload_hash="ab" * 32,
        refunded_minor=0,
    )


@dataclass
class FakeRows:
    ids: list[str]
    asked: list[tuple[datetime, str, int]] = field(default_factory=list)

    def page(self, *, since: datetime, after: str, limit: int) -> list[PaymentRecord]:
        self.asked.append((since, after, limit))
        return [record(pid) for pid in sorted(self.ids) if pid > after][:limit]


def test_pages_follow_the_cursor_until_a_short_page() -> None:
    rows = FakeRows(["a", "b", "c"])
    first = export({"since": "2026-11-30T04:00:00+01:00", "limit": 2}, rows, max_page=1000)
    second = export({"since": "2026-11-30T03:00:00Z", "after": first["next"]}, rows, max_page=2)

    assert [r["payment_id"] for r in first["records"]] == ["a", "b"] and first["next"] == "b"
    assert [r["payment_id"] for r in second["records"]] == ["c"] and second["next"] is None
    assert rows.asked[0] == (datetime(2026, 11, 30, 3, 0, tzinfo=UTC), "", 2)  # since in UTC
    assert rows.asked[1][2] == 2  # capped by the function's own maximum


def test_a_record_survives_the_trip_through_json() -> None:
    original = record("pay-1")
    assert records.from_json(records.to_json(original)) == original
    assert records.to_json(original)["processed_at"] == "2026-11-30T04:00:00Z"


def test_bad_requests_are_answered_not_raised() -> None:
    rows = FakeRows([])
    assert "error" in export({"since": "yesterday"}, rows, max_page=10)
    assert "error" in export({"since": "2026-11-30T04:00:00"}, rows, max_page=10)  # no zone
    assert "error" in export({"since": "2026-11-30T04:00:00Z", "limit": 0}, rows, max_page=10)
    assert "error" in export({"since": "2026-11-30T04:00:00Z", "drop": "table"}, rows, max_page=1)
    assert rows.asked == []
