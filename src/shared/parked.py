"""What a set-aside event looks like in the standby and rejected queues, and which queue takes it.

The processor writes these messages (shared/adapters/parking.py); `drctl redrive` reads them
back. Routing is by outcome: PARKED (valid, but not writable here and now: passive region,
read-only database, a refund whose charge is not in the ledger yet) goes to STANDBY, which is
redriven; REJECTED and CONFLICT go to REJECTED, for a person. Retrying cannot fix those.
"""

from __future__ import annotations

from typing import Any

from shared.names import Queue

STANDBY_OUTCOMES = frozenset({"PARKED"})


def queue_for(outcome: str) -> Queue:
    return Queue.STANDBY if outcome in STANDBY_OUTCOMES else Queue.REJECTED


def message(
    event: Any, *, outcome: str, code: str, reason: str, parked_at: str, region: str
) -> dict[str, Any]:
    """The message body (the event already masked of card data by the caller)."""
    return {
        "outcome": outcome,
        "code": code,
        "reason": reason,
        "parked_at": parked_at,
        "region": region,
        "event": event,
    }


def event_of(body: Any) -> Any:
    """The original event inside a parked message, or None if `body` is not one."""
    if isinstance(body, dict) and "event" in body and "outcome" in body:
        return body["event"]
    return None
