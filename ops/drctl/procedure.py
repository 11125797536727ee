"""A DR procedure as named, timed steps: progress on stderr as each step runs, then a summary of
every step's duration and outcome on stdout, and (with --report) the same as JSON with UTC
timestamps, which is what the drill reads to build its timeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from ops.drctl.console import format_elapsed
from ops.drctl.context import Context


@dataclass
class Step:
    id: str  # stable, for the report: fence, promote, control, secrets, unfence, redrive, ...
    title: str
    started_at: str = ""
    ended_at: str = ""
    seconds: float = 0.0
    outcome: str = "running"  # done | skipped | degraded | failed
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)


class Procedure:
    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.steps: list[Step] = []
        self.facts: dict[str, Any] = {}  # what the report carries besides the steps
        self.started_at = self._stamp()
        self._started = ctx.console.clock()

    def _stamp(self) -> str:
        """UTC to the millisecond: the drill orders these against its own events."""
        moment = self.ctx.now().astimezone(UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @contextmanager
    def step(self, step_id: str, title: str) -> Iterator[Step]:
        step = Step(step_id, title, started_at=self._stamp())
        self.steps.append(step)
        self.ctx.console.step(f"{len(self.steps)}. {title}")
        began = self.ctx.console.clock()
        try:
            yield step
        except BaseException:
            step.outcome = "failed"
            raise
        else:
            if step.outcome == "running":
                step.outcome = "done"
        finally:
            step.seconds = self.ctx.console.clock() - began
            step.ended_at = self._stamp()
            for text in step.notes:
                self.ctx.console.progress(f"    {text}")

    def skip(self, step_id: str, title: str, why: str) -> None:
        with self.step(step_id, title) as step:
            step.outcome = "skipped"
            step.note(why)

    @property
    def total_seconds(self) -> float:
        return self.ctx.console.clock() - self._started

    def summary(self, headline: str) -> None:
        """One line per step: id, duration (mm:ss), outcome, what it did."""
        out = self.ctx.console.result
        out(headline)
        width = max((len(step.id) for step in self.steps), default=8)
        for number, step in enumerate(self.steps, 1):
            out(
                f"  {number:>2}. {step.id:<{width}}  {format_elapsed(step.seconds)}  "
                f"{step.outcome:<8}  {step.title}"
            )
        out(f"      {'total':<{width}}  {format_elapsed(self.total_seconds)}")

    def write_report(self, path: Path | None) -> None:
        if path is None:
            return
        document = {
            "procedure": self.name,
            "env": self.ctx.env,
            "started_at": self.started_at,
            "ended_at": self._stamp(),
            "steps": [asdict(step) for step in self.steps],
            **self.facts,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
