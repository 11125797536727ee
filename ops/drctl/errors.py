"""Exceptions that carry the exit code the CLI returns for them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PROBLEMS = 3
EXIT_REFUSED = 4


class DrctlError(Exception):
    """An operation failed; the message says what to do about it."""

    exit_code = EXIT_FAILURE


class UsageError(DrctlError):
    """The command line asks for something that cannot be (unknown stack id, bad --param)."""

    exit_code = EXIT_USAGE


class PlanError(DrctlError):
    """infra-global/stacks.yaml (or a template it names) is wrong."""


class StackOperationFailed(DrctlError):
    """A CloudFormation or SAM operation ended in a failed state."""


class WaitTimedOut(DrctlError):
    """A wait ran out of attempts; the operation may still be running in AWS."""


class Refused(DrctlError):
    """A guard refused the command (prod without the explicit flag, no confirmation)."""

    exit_code = EXIT_REFUSED
