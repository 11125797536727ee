"""A card number in any field, any spelling, any JSON type is refused, and no copy of it leaves the
handler: not the ledger, not DynamoDB, not the parked queue, not the response, not a log line
(Powertools' correlation_id included). Through the real, decorated handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from shared.observability import logger
from tests.conftest import ledger_rows
from tests.integration.scenario import PowertoolsLines, capture_log_lines, charge, digits_of

pytestmark = pytest.mark.integration


@pytest.fixture
def log_lines() -> Iterator[PowertoolsLines]:
    with capture_log_lines() as lines:
        yield lines


VISA = "4111111111111111"
VISA_2 = "4012888888881881"

# (what the publisher sent, the card number in it, the field the reason must name)
LEAKS = [
    ({"payment_id": "p-4111-1111-1111-1111-X"}, VISA, "detail.payment_id"),
    ({"customer_id": "c_4111_1111_1111_1111"}, VISA, "detail.customer_id"),
    ({"merchant_id": "m-4111-1111-1111-1111"}, VISA, "detail.merchant_id"),
    ({"payment_id": VISA_2}, VISA_2, "detail.payment_id"),
    ({"metadata": {"note": "card4111 1111 1111 1111"}}, VISA, "detail.metadata.note"),
    ({"metadata": {"note": "4111 1111-1111 1111"}}, VISA, "detail.metadata.note"),
    ({"metadata": {"note": "4111.1111.1111.1111"}}, VISA, "detail.metadata.note"),
    ({"metadata": {"note": "4111_1111_1111_1111"}}, VISA, "detail.metadata.note"),
    ({"amount_minor": 4111111111111111.0}, VISA, "detail.amount_minor"),
    ({"amount_minor": 4111111111111111}, VISA, "detail.amount_minor"),
]


@pytest.mark.parametrize(("changes", "pan", "where"), LEAKS)
def test_card_number_is_refused_and_never_copied(
    sandbox: Any,
    lambda_context: Any,
    log_lines: PowertoolsLines,
    changes: dict[str, Any],
    pan: str,
    where: str,
) -> None:
    answer = lambda_handler(charge(**{"payment_id": "pay-pan-probe", **changes}), lambda_context)

    assert answer["outcome"] == "REJECTED"
    assert answer["reason"].startswith("CARD_NUMBER_IN_EVENT: ")
    assert where in answer["reason"]
    assert ledger_rows(sandbox.mariadb, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert sandbox.dynamodb.scan(TableName=sandbox.env["SESSIONS_TABLE"])["Count"] == 0
    (parked,) = sandbox.parked()
    assert (parked["outcome"], parked["code"]) == ("REJECTED", "CARD_NUMBER_IN_EVENT")
    # Masked, not dropped: the operator still sees the rest of the event.
    assert parked["event"]["detail"]["currency"] == "USD"
    for where_it_could_leak in (json.dumps(answer), json.dumps(parked), log_lines.text):
        assert pan not in digits_of(where_it_could_leak)
    correlation_id = logger.get_correlation_id()
    assert correlation_id is None or pan not in digits_of(str(correlation_id))
    assert log_lines.lines, "the rejection is logged"


def test_a_valid_payment_is_logged_under_its_payment_id(
    sandbox: Any, lambda_context: Any, log_lines: PowertoolsLines
) -> None:
    assert lambda_handler(charge("pay-corr-1"), lambda_context)["outcome"] == "PROCESSED"

    assert logger.get_correlation_id() == "pay-corr-1"
    assert all('"correlation_id":"pay-corr-1"' in line for line in log_lines.lines)
