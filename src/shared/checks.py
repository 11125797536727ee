"""Checks as data, and the one runner the health function and the replication monitor share.

A Check is a name, a probe (an adapter call that raises when the thing is unreachable and
otherwise returns what it saw), the region roles it matters for, and a judge that turns what the
probe saw into a verdict. A new check is an adapter plus one `Check(...)` line in a wiring list.

`CheckRunner.run` runs checks concurrently, each within its own timeout and all within what is
left of an overall deadline; an answer that comes late is a failure "no answer within N s", never
a wait. Python cannot stop a thread, so a probe that hangs keeps its thread until its own socket
timeout ends it: each round has its own pool, shut down without waiting, so a hung probe never
holds up the next round (adapters carry timeouts of their own for that reason).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What a region does now (the region-control item says): not its stack's role."""

    ACTIVE = "active"  # takes writes
    PASSIVE = "passive"  # replicates, parks events, ready to be promoted


EVERY_ROLE = frozenset(Role)


def accept(_: Any) -> str | None:
    """The default judge: the probe answered without raising, so the check passed."""
    return None


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], Any]
    roles: frozenset[Role] = EVERY_ROLE
    # What the probe saw -> None when fine, else why not (for logs, never for a public body).
    judge: Callable[[Any], str | None] = accept
    # Its own limit, when it must differ from the runner's (a canary that waits for replication).
    timeout: float | None = None

    def matters_for(self, role: Role | None) -> bool:
        """A check matters for a role it names; with the role unknown, only checks that matter
        whatever the role does (they are worth running to say what else is wrong)."""
        return role in self.roles if role is not None else self.roles == EVERY_ROLE


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    seconds: float
    value: Any = None  # what the probe returned (None when it raised or timed out)
    detail: str = ""  # why it failed: logs and metrics only
    answered: bool = True  # False: the probe raised or gave no answer in time


def _timed(probe: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    started = time.monotonic()
    try:
        return probe(), None, time.monotonic() - started
    except Exception as exc:  # noqa: BLE001 - whatever a probe raises, its check failed
        return None, exc, time.monotonic() - started


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"raised {type(exc).__name__}" + (f": {text}" if text else "")


@dataclass
class CheckRunner:
    """Runs checks concurrently: each within `timeout` (or its own), all by `deadline`."""

    timeout: float
    clock: Callable[[], float] = field(default=time.monotonic)

    def run(self, checks: Iterable[Check], *, deadline: float | None = None) -> dict[str, Result]:
        """Results by check name, in the order given. `deadline` is on `clock` (monotonic)."""
        todo: Sequence[Check] = list(checks)
        if not todo:
            return {}
        started = self.clock()
        longest = max([self.timeout, *(c.timeout for c in todo if c.timeout is not None)])
        end = started + longest if deadline is None else deadline
        pool = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="check")
        try:
            # Each probe runs in a copy of the caller's context: the invocation's Deadline
            # (shared.deadline, a ContextVar) bounds its AWS and MySQL calls too.
            futures = [
                (check, pool.submit(contextvars.copy_context().run, _timed, check.probe))
                for check in todo
            ]
            return {check.name: self._collect(check, f, started, end) for check, f in futures}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _collect(
        self,
        check: Check,
        future: Future[tuple[Any, BaseException | None, float]],
        started: float,
        end: float,
    ) -> Result:
        limit = check.timeout if check.timeout is not None else self.timeout
        until = min(end, started + limit)
        try:
            value, error, seconds = future.result(timeout=max(0.0, until - self.clock()))
        except FutureTimeout:
            waited = f"no answer within {until - started:.3g}s"
            return Result(check.name, False, self.clock() - started, detail=waited, answered=False)
        if error is not None:
            return Result(check.name, False, seconds, detail=describe(error), answered=False)
        try:
            reason = check.judge(value)
        except Exception as exc:  # noqa: BLE001 - a judge that breaks fails its check, not the round
            reason = f"judge {describe(exc)}"
        return Result(check.name, reason is None, seconds, value, reason or "")
