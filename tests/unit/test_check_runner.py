"""The one check runner the health function and the replication monitor share (shared/checks.py):
concurrent, each check within its own timeout, all by a deadline, failures named and explained."""

from __future__ import annotations

import threading
from typing import Any

from shared import deadline
from shared.checks import EVERY_ROLE, Check, CheckRunner, Role


class Hang:
    """A probe that blocks until released (a dependency that accepts and never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()

    def __call__(self) -> None:
        self.release.wait(timeout=60)  # a safety net only: every test releases it
        self.finished.set()


def test_a_check_that_hangs_is_cut_off_and_the_others_still_answer() -> None:
    hang = Hang()
    try:
        results = CheckRunner(timeout=0.2).run([Check("hangs", hang), Check("fine", lambda: 42)])
        returned_before_the_hang_ended = not hang.finished.is_set()
    finally:
        hang.release.set()

    assert returned_before_the_hang_ended
    assert not results["hangs"].ok and not results["hangs"].answered
    assert results["hangs"].detail.startswith("no answer within")
    assert results["fine"].ok and results["fine"].value == 42


def test_a_probe_that_raises_fails_with_its_reason_and_a_judge_can_fail_an_answer() -> None:
    def broken() -> None:
        raise ConnectionError("refused")

    results = CheckRunner(timeout=1).run(
        [
            Check("raises", broken),
            Check("judged", lambda: 5, judge=lambda v: None if v < 3 else f"{v} is too many"),
            Check("judge breaks", lambda: None, judge=lambda v: str(1 / 0)),
        ]
    )

    assert results["raises"].detail == "raised ConnectionError: refused"
    assert not results["raises"].answered
    assert (results["judged"].ok, results["judged"].answered) == (False, True)
    assert results["judged"].detail == "5 is too many"
    assert results["judge breaks"].detail == "judge raised ZeroDivisionError: division by zero"


def test_a_check_may_have_a_longer_timeout_of_its_own() -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(timeout=0.3)
        return "done"

    runner = CheckRunner(timeout=0.05)
    threading.Timer(0.15, release.set).start()
    results = runner.run([Check("patient", slow, timeout=5)])

    assert results["patient"].ok and results["patient"].value == "done"


def test_probes_run_under_the_callers_invocation_deadline() -> None:
    seen: list[Any] = []
    with deadline.Deadline(30).active() as active:
        CheckRunner(timeout=1).run([Check("sees", lambda: seen.append(deadline.current()))])

    assert seen == [active]  # its AWS and MySQL calls are bounded by the invocation's deadline


def test_which_checks_matter_for_a_role() -> None:
    passive_only = Check("replica", lambda: None, frozenset({Role.PASSIVE}))
    everywhere = Check("s3", lambda: None)

    assert passive_only.matters_for(Role.PASSIVE) and not passive_only.matters_for(Role.ACTIVE)
    assert everywhere.roles == EVERY_ROLE and everywhere.matters_for(Role.ACTIVE)
    # Role unknown: only the checks that matter whatever the role is.
    assert everywhere.matters_for(None) and not passive_only.matters_for(None)
