"""Polling with a budget and progress ticks, for the waits no botocore waiter covers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops.drctl.console import Console
from ops.drctl.errors import WaitTimedOut


@dataclass(frozen=True)
class WaitPolicy:
    """Delay between checks (s) and the number of checks, as in a botocore WaiterConfig."""

    delay: int
    max_attempts: int

    @property
    def budget_minutes(self) -> int:
        return self.delay * self.max_attempts // 60


def poll(
    console: Console,
    sleep: Callable[[float], None],
    label: str,
    done: Callable[[], bool],
    policy: WaitPolicy,
) -> None:
    """Call done() until it returns True, ticking on stderr; WaitTimedOut past the budget."""
    started = console.clock()
    for attempt in range(1, policy.max_attempts + 1):
        if done():
            return
        console.tick(label, started, f"check {attempt}/{policy.max_attempts}")
        if attempt < policy.max_attempts:
            sleep(policy.delay)
    raise WaitTimedOut(
        f"{label}: still not done after {policy.budget_minutes} min; it may still be running "
        "in AWS: check, then re-run (every step is idempotent)"
    )
