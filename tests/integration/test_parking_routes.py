"""Where a set-aside event goes: valid but not writable here and now -> STANDBY (redriven after
promotion); invalid or conflicting -> REJECTED (for a person). The real handler, moto, MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from tests.conftest import load_event

pytestmark = pytest.mark.integration


def _codes(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["outcome"], m["code"]) for m in messages]


def test_a_passive_region_sets_valid_events_aside_on_standby(
    sandbox: Any, lambda_context: Any
) -> None:
    sandbox.set_active_region("us-west-2")

    lambda_handler(load_event("01_charge_usd.json"), lambda_context)
    lambda_handler(load_event("09_invalid_float_amount.json"), lambda_context)

    assert _codes(sandbox.standby()) == [("PARKED", "REGION_PASSIVE")]
    # Invalid is invalid in any region: a person sees it, whichever region rejected it.
    assert _codes(sandbox.rejected()) == [("REJECTED", "INVALID_EVENT")]


def test_a_read_only_ledger_and_a_refund_before_its_charge_wait_on_standby(
    sandbox: Any, lambda_context: Any
) -> None:
    refund = lambda_handler(load_event("05_refund_partial_usd.json"), lambda_context)
    sandbox.mariadb.set_read_only(True)
    charge = lambda_handler(load_event("01_charge_usd.json"), lambda_context)

    assert (refund["outcome"], charge["outcome"]) == ("PARKED", "PARKED")
    standby = sandbox.standby()
    assert sorted(code for _, code in _codes(standby)) == [
        "DATABASE_READ_ONLY",
        "ORIGINAL_NOT_FOUND",
    ]
    assert sandbox.rejected() == []
    # Redriven once the ledger is writable again (charge first), both are processed.
    sandbox.mariadb.set_read_only(False)
    by_code = {m["code"]: m["event"] for m in standby}
    assert lambda_handler(by_code["DATABASE_READ_ONLY"], lambda_context)["outcome"] == "PROCESSED"
    assert lambda_handler(by_code["ORIGINAL_NOT_FOUND"], lambda_context)["outcome"] == "PROCESSED"


def test_conflicts_and_business_refusals_go_to_the_rejected_queue(
    sandbox: Any, lambda_context: Any
) -> None:
    lambda_handler(load_event("01_charge_usd.json"), lambda_context)
    lambda_handler(load_event("07_conflict_charge_usd.json"), lambda_context)
    lambda_handler(load_event("03_charge_bhd.json"), lambda_context)
    lambda_handler(load_event("08_over_refund_bhd.json"), lambda_context)

    assert sandbox.standby() == []
    assert sorted(_codes(sandbox.rejected())) == [
        ("CONFLICT", "CONFLICT"),
        ("REJECTED", "REFUND_EXCEEDS_CHARGE"),
    ]
