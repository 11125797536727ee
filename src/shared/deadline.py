"""A per-invocation deadline that AWS SDK retries respect.

botocore has no notion of "stop retrying before the Lambda times out", so this small module adds
it through botocore's own event hooks: the invocation fails cleanly (and Lambda/EventBridge retry
it) instead of being killed mid-call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.errors import DeadlineExceeded

_current: ContextVar[Deadline | None] = ContextVar("deadline", default=None)


class Deadline:
    """``seconds`` from now (on ``clock``), less ``margin`` kept back so the invocation can still
    fail cleanly. AWS calls (the hooks below) and the ledger's database waits
    (shared.adapters.mysql, shared.adapters.ledger) all read the active one."""

    def __init__(
        self,
        seconds: float,
        *,
        margin: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.expires_at = clock() + seconds
        self.margin = margin

    @classmethod
    def from_context(
        cls,
        context: Any,
        *,
        margin: float = 1.0,
        default: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining_ms() / 1000.0 if callable(remaining_ms) else default
        return cls(seconds, margin=margin, clock=clock)

    def remaining(self) -> float:
        return self.expires_at - self._clock() - self.margin

    def check(self, needed: float = 0.0, what: str = "call") -> None:
        if self.remaining() < needed:
            raise DeadlineExceeded(f"not enough time left for {what}")

    @contextmanager
    def active(self) -> Iterator[Deadline]:
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


def current() -> Deadline | None:
    return _current.get()


def _before_send(**_: Any) -> None:
    deadline = _current.get()
    if deadline is not None:
        deadline.check(what="AWS request")


# The codes botocore's standard mode retries (botocore.retries.standard), plus 5xx and
# connection errors; anything else is returned to the caller untouched.
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
    }
)


def _would_retry(response: Any, caught_exception: BaseException | None) -> bool:
    if caught_exception is not None:
        return True
    if not response:
        return False
    http, parsed = response
    if http.status_code >= 500:
        return True
    return parsed.get("Error", {}).get("Code", "") in _RETRYABLE_CODES


def _needs_retry(
    attempts: int = 1,
    response: Any = None,
    caught_exception: BaseException | None = None,
    **_: Any,
) -> None:
    # Standard mode sleeps up to min(20, 2**attempts) s before the next attempt: give up now if
    # that sleep could run past the deadline. Returning None leaves the decision to botocore.
    deadline = _current.get()
    if deadline is not None and _would_retry(response, caught_exception):
        deadline.check(needed=min(20.0, 2.0**attempts), what="another AWS retry")


def install(client: Any) -> Any:
    """Make every request and retry of this boto3 client honour the active deadline."""
    events = client.meta.events
    events.register_first("needs-retry", _needs_retry)
    events.register_first("before-send", _before_send)
    return client
