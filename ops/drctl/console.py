"""Operator output: results on stdout, progress (with elapsed time) on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class Console:
    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._err = err
        self.clock = clock

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def result(self, message: str) -> None:
        """What the command produced (a plan, a problem list): stdout, so it can be piped."""
        print(message, file=self.out, flush=True)

    def progress(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def step(self, message: str) -> None:
        self.progress(f"==> {message}")

    def tick(self, what: str, started: float, detail: str = "") -> None:
        elapsed = format_elapsed(self.clock() - started)
        suffix = f" ({detail})" if detail else ""
        self.progress(f"    [{elapsed}] waiting: {what}{suffix}")
