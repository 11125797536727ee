"""Building blocks for the handler-level ledger tests: events built from the samples, a Lambda
context whose remaining time runs down, and the processor's log lines as Powertools prints them."""

from __future__ import annotations

import copy
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import LambdaContextStub, load_event

_DELETE = object()


def event(
    sample: str = "01_charge_usd.json",
    *,
    age_seconds: float | None = None,
    **detail_changes: Any,
) -> dict[str, Any]:
    """A sample event with a new EventBridge id and changed detail fields (``DELETE`` removes
    one). ``age_seconds`` sets the envelope's ``time`` that long before now."""
    built = copy.deepcopy(load_event(sample))
    built["id"] = str(uuid.uuid4())
    if age_seconds is not None:
        built["time"] = iso(datetime.now(UTC) - timedelta(seconds=age_seconds))
    for key, value in detail_changes.items():
        if value is _DELETE:
            built["detail"].pop(key, None)
        else:
            built["detail"][key] = value
    return built


DELETE: Any = _DELETE


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def charge(payment_id: str, **changes: Any) -> dict[str, Any]:
    """A USD charge (sample 01, no card or metadata unless given)."""
    changes.setdefault("card", DELETE)
    changes.setdefault("metadata", DELETE)
    return event("01_charge_usd.json", payment_id=payment_id, **changes)


def refund(payment_id: str, original: str, amount_minor: int, **changes: Any) -> dict[str, Any]:
    """A USD refund of ``original`` by the same merchant and customer as ``charge``'s default."""
    base = load_event("01_charge_usd.json")["detail"]
    changes.setdefault("merchant_id", base["merchant_id"])
    changes.setdefault("customer_id", base["customer_id"])
    changes.setdefault("currency", "USD")
    return event(
        "05_refund_partial_usd.json",
        payment_id=payment_id,
        original_payment_id=original,
        amount_minor=amount_minor,
        **changes,
    )


class CountdownContext(LambdaContextStub):
    """A Lambda context whose remaining time runs down as Lambda's does: what is left when the
    handler returns says whether Lambda would have killed the invocation first."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._ends_at = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._ends_at - time.monotonic()) * 1000)


class PowertoolsLines(logging.Handler):
    """Every record of the processor's logger, formatted by Powertools' own formatter when it is
    emitted (so correlation_id and every appended key are in the line, as in CloudWatch)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from shared.observability import logger

        self.lines.append(logger.registered_formatter.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def capture_log_lines() -> Iterator[PowertoolsLines]:
    """Use as a fixture body: ``with capture_log_lines() as lines: yield lines``."""
    from shared.observability import logger

    handler = PowertoolsLines()
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(handler)
    try:
        yield handler
    finally:
        stdlib_logger.removeHandler(handler)


def digits_of(text: str) -> str:
    """Only the digits of ``text``: a card number that left in any spelling is a substring."""
    return re.sub(r"[^0-9]", "", text)
