"""CloudFormation adapter: describe, change sets, deletes, and waits that report progress.

Waits use the botocore stack/change-set waiters in slices of one attempt, so that between
attempts new stack events and the elapsed time can be printed; the overall budget is the
WaitPolicy (Delay x MaxAttempts), as with a plain WaiterConfig.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from ops.drctl.console import Console
from ops.drctl.errors import StackOperationFailed, WaitTimedOut
from ops.drctl.waiting import WaitPolicy

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Never finished a create: nothing to keep, delete and create again.
RECREATE_STATES = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS"})
UPDATABLE_STATES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
FAILED_STATES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "DELETE_FAILED",
        "UPDATE_FAILED",
        "UPDATE_ROLLBACK_FAILED",
        "IMPORT_ROLLBACK_FAILED",
    }
)
# CloudFormation reports "nothing to change" only as text: on the FAILED change set (AWS), or
# as a ValidationError from CreateChangeSet itself (moto, and UpdateStack in AWS).
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_STILL_WAITING = "Max attempts exceeded"


CHANGE_SET_WAIT = WaitPolicy(delay=5, max_attempts=120)  # 10 min
STACK_WAIT = WaitPolicy(delay=10, max_attempts=180)  # 30 min
# Aurora: a cluster plus instances takes 15-20 min, a secondary joining a global cluster
# often longer; deletes with final snapshots too.
AURORA_WAIT = WaitPolicy(delay=30, max_attempts=180)  # 90 min


@dataclass(frozen=True)
class StackState:
    name: str
    stack_id: str
    status: str
    status_reason: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeSet:
    stack_name: str
    arn: str
    change_type: str
    changes: tuple[str, ...]


def is_missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


def _says_no_changes(text: str) -> bool:
    return any(marker in text for marker in _NO_CHANGES)


class _WaitFailed(StackOperationFailed):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _EventFeed:
    """Prints stack events that appeared since the feed was opened; keeps the failures."""

    def __init__(self, client: Any, stack: str | None, console: Console, region: str) -> None:
        self._client = client
        self._stack = stack
        self._console = console
        self._region = region
        self.failures: list[str] = []
        self._seen = {event["EventId"] for event in self._page()}

    def _page(self) -> list[dict[str, Any]]:
        if self._stack is None:
            return []
        try:
            return list(self._client.describe_stack_events(StackName=self._stack)["StackEvents"])
        except ClientError:
            return []  # the stack is gone or not yet there: nothing to show

    def flush(self) -> None:
        fresh = [event for event in self._page() if event["EventId"] not in self._seen]
        for event in reversed(fresh):  # the API lists newest first
            self._seen.add(event["EventId"])
            status = event.get("ResourceStatus", "")
            reason = event.get("ResourceStatusReason", "")
            line = (
                f"    {self._region} {event.get('LogicalResourceId', '')} "
                f"({event.get('ResourceType', '')}) {status}"
            )
            self._console.progress(f"{line}: {reason}" if reason else line)
            if status.endswith("_FAILED") and reason and "cancelled" not in reason:
                self.failures.append(f"{event.get('LogicalResourceId')}: {reason}")


class CloudFormation:
    def __init__(
        self,
        client: Any,
        region: str,
        console: Console,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.region = region
        self._console = console
        self._sleep = sleep

    def describe(self, name: str) -> StackState | None:
        try:
            stacks = self.client.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if is_missing_stack(exc):
                return None
            raise
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            return None
        stack = stacks[0]
        return StackState(
            name=stack["StackName"],
            stack_id=stack["StackId"],
            status=stack["StackStatus"],
            status_reason=stack.get("StackStatusReason", ""),
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
            parameters={
                p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
            },
        )

    def resources(self, name: str) -> list[dict[str, Any]]:
        """The stack's resources (empty when the stack does not exist)."""
        try:
            pages = self.client.get_paginator("list_stack_resources").paginate(StackName=name)
            return [item for page in pages for item in page["StackResourceSummaries"]]
        except ClientError as exc:
            if is_missing_stack(exc):
                return []
            raise

    def physical_ids(self, name: str, *resource_types: str) -> list[str]:
        return [
            r["PhysicalResourceId"]
            for r in self.resources(name)
            if r.get("ResourceType") in resource_types and r.get("PhysicalResourceId")
        ]

    def create_change_set(
        self,
        stack_name: str,
        *,
        change_type: str,
        template: Mapping[str, str],
        parameters: list[dict[str, Any]],
        tags: Mapping[str, str],
    ) -> ChangeSet | None:
        """A reviewed change set, or None when the stack already matches (nothing is left)."""
        name = f"drctl-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        try:
            created = self.client.create_change_set(
                StackName=stack_name,
                ChangeSetName=name,
                ChangeSetType=change_type,
                Parameters=parameters,
                Capabilities=CAPABILITIES,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                Description="drctl deploy",
                **template,
            )
        except ClientError as exc:
            if _says_no_changes(exc.response.get("Error", {}).get("Message", "")):
                return None
            raise
        arn = created["Id"]
        try:
            self.wait(
                "change_set_create_complete",
                CHANGE_SET_WAIT,
                label=f"change set for {stack_name}",
                ChangeSetName=arn,
                StackName=stack_name,
            )
        except _WaitFailed as exc:
            described = self.client.describe_change_set(ChangeSetName=arn, StackName=stack_name)
            reason = described.get("StatusReason", exc.reason)
            if _says_no_changes(reason):
                self.client.delete_change_set(ChangeSetName=arn, StackName=stack_name)
                return None
            raise StackOperationFailed(f"change set for {stack_name} failed: {reason}") from exc
        described = self.client.describe_change_set(ChangeSetName=arn, StackName=stack_name)
        changes = tuple(
            f"{rc.get('Action', '?')} {rc.get('LogicalResourceId', '?')} "
            f"({rc.get('ResourceType', '?')})"
            + (f" replacement={rc['Replacement']}" if rc.get("Replacement") else "")
            for item in described.get("Changes", [])
            for rc in [item.get("ResourceChange", {})]
        )
        return ChangeSet(stack_name, arn, change_type, changes)

    def delete_change_set(self, change_set: ChangeSet) -> None:
        self.client.delete_change_set(ChangeSetName=change_set.arn, StackName=change_set.stack_name)

    def execute(self, change_set: ChangeSet, policy: WaitPolicy) -> None:
        create = change_set.change_type == "CREATE"
        waiter = "stack_create_complete" if create else "stack_update_complete"
        feed = self._feed(change_set.stack_name)  # opened first: fast failures show too
        self.client.execute_change_set(
            ChangeSetName=change_set.arn, StackName=change_set.stack_name
        )
        self.wait(
            waiter,
            policy,
            label=f"{change_set.stack_name} ({self.region}) {change_set.change_type.lower()}",
            feed=feed,
            StackName=change_set.stack_name,
        )

    def _feed(self, stack: str | None) -> _EventFeed:
        return _EventFeed(self.client, stack, self._console, self.region)

    def delete_stack(
        self,
        name: str,
        policy: WaitPolicy = STACK_WAIT,
        *,
        gone_types: frozenset[str] = frozenset(),
    ) -> bool:
        """Delete and wait; False when there was nothing to delete. Safe to repeat.

        `gone_types`: resource types the caller already deleted through their own API (Aurora
        clusters, instances). If the deletion fails only on such resources, it is retried with
        RetainResources for them: retaining what no longer exists loses nothing.
        """
        state = self.describe(name)
        if state is None:
            return False
        try:
            if state.status == "DELETE_FAILED" and gone_types:
                raise _WaitFailed(f"{name} is DELETE_FAILED", "DELETE_FAILED")
            feed = self._feed(state.stack_id)
            if state.status != "DELETE_IN_PROGRESS":
                self.client.delete_stack(StackName=state.stack_id)
            self._wait_deleted(name, state.stack_id, policy, feed)
        except _WaitFailed:
            retain = self._failed_only_on(name, gone_types)
            if not retain:
                raise
            self._console.progress(f"    retrying without {', '.join(retain)} (already deleted)")
            feed = self._feed(state.stack_id)
            self.client.delete_stack(StackName=state.stack_id, RetainResources=retain)
            self._wait_deleted(name, state.stack_id, policy, feed)
        return True

    def _wait_deleted(self, name: str, stack_id: str, policy: WaitPolicy, feed: _EventFeed) -> None:
        self.wait(
            "stack_delete_complete",
            policy,
            label=f"{name} ({self.region}) delete",
            feed=feed,
            StackName=stack_id,
        )

    def _failed_only_on(self, name: str, gone_types: frozenset[str]) -> list[str]:
        failed = [r for r in self.resources(name) if r.get("ResourceStatus") == "DELETE_FAILED"]
        if not failed or any(r.get("ResourceType") not in gone_types for r in failed):
            return []
        return [r["LogicalResourceId"] for r in failed]

    def wait(
        self,
        waiter_name: str,
        policy: WaitPolicy,
        *,
        label: str,
        feed: _EventFeed | None = None,
        **kwargs: Any,
    ) -> None:
        waiter = self.client.get_waiter(waiter_name)
        feed = feed or self._feed(None)
        started = self._console.clock()
        for attempt in range(1, policy.max_attempts + 1):
            try:
                waiter.wait(**kwargs, WaiterConfig={"Delay": policy.delay, "MaxAttempts": 1})
            except WaiterError as exc:
                reason = str(exc.kwargs.get("reason", exc))
                if reason != _STILL_WAITING:
                    feed.flush()
                    detail = "; ".join(feed.failures) or reason
                    raise _WaitFailed(f"{label} failed: {detail}", reason) from exc
            else:
                feed.flush()
                return
            feed.flush()
            self._console.tick(label, started, f"check {attempt}/{policy.max_attempts}")
            if attempt < policy.max_attempts:
                self._sleep(policy.delay)
        raise WaitTimedOut(
            f"{label}: still not done after {policy.budget_minutes} min; it may still be "
            "running in AWS: check the console, then re-run (every step is idempotent)"
        )
