"""`drctl redrive`: replay set-aside events through the active region's processor.

Safe because the write path is idempotent: an event the ledger already holds comes back
DUPLICATE, one it lost is processed, an invalid one is rejected (and parked again by the
processor itself, with its reason). Each event is replayed by invoking the processor's `live`
alias synchronously (RequestResponse), whose answer is the outcome that is counted; the message
is deleted only once the processor has answered. What the processor could not answer (it
raised) or what is not an event stays in the queue, and so does anything that arrived while the
redrive ran (e.g. a refund parked again because its charge comes later in the same queue): a
standby redrive makes further passes while they make progress.

Queue formats: standby/rejected hold shared/parked.py messages; failures hold Lambda's
on-failure records (the event is `requestPayload`); the DLQ holds the EventBridge event itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl import control, functions, names
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused
from shared import parked
from shared.names import Queue

BATCH = 10  # ReceiveMessage maximum
HOLD_SECONDS = 300  # how long a message we leave alone stays invisible while the run goes on
DEFAULT_PARALLEL = 4
MAX_PASSES = 5


def event_in(purpose: Queue, body: Any) -> Any:
    """The EventBridge event a queue message carries, or None."""
    if purpose in (Queue.STANDBY, Queue.REJECTED):
        return parked.event_of(body)
    if purpose is Queue.FAILURES:
        payload = body.get("requestPayload") if isinstance(body, dict) else None
        return payload if isinstance(payload, dict) else None
    return body if isinstance(body, dict) and "detail-type" in body else None


@dataclass
class RedriveResult:
    purpose: Queue
    source_region: str
    target_region: str
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: int = 0  # the processor raised: left in the queue
    unreadable: int = 0  # not an event: left in the queue
    held: int = 0  # arrived during the redrive: left for the next one
    passes: int = 0

    @property
    def replayed(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.purpose.value,
            "source_region": self.source_region,
            "target_region": self.target_region,
            "outcomes": dict(sorted(self.outcomes.items())),
            "replayed": self.replayed,
            "failed": self.failed,
            "unreadable": self.unreadable,
            "left_for_next_redrive": self.held,
            "passes": self.passes,
        }

    def lines(self) -> list[str]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "nothing"
        text = [
            f"{self.purpose.value} queue ({self.source_region}) -> processor in "
            f"{self.target_region}: {self.replayed} replayed: {counts}"
        ]
        left = []
        if self.failed:
            left.append(f"{self.failed} failed in the processor")
        if self.unreadable:
            left.append(f"{self.unreadable} not an event")
        if self.held:
            left.append(f"{self.held} arrived during the redrive")
        if left:
            text.append(f"left in the queue: {', '.join(left)}")
        return text


@dataclass
class _Pass:
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    unreadable: int = 0
    held: list[str] = field(default_factory=list)  # receipt handles to release at the end


def queue_url(
    ctx: Context, region: str, purpose: Queue, role: str, *, bounded: bool = False
) -> str:
    name = names.queue(purpose, role, ctx.env)
    try:
        return str(
            ctx.aws.client("sqs", region, bounded=bounded).get_queue_url(QueueName=name)["QueueUrl"]
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise DrctlError(f"queue {name} does not exist in {region}") from exc
        raise


Replay = Callable[[Any], functions.Invocation]


def _one_pass(
    ctx: Context, sqs: Any, url: str, purpose: Queue, replay: Replay, parallel: int
) -> _Pass:
    started_ms = int(ctx.now().timestamp() * 1000)
    result = _Pass()
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="redrive") as pool:
        while True:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=BATCH,
                WaitTimeSeconds=1,
                VisibilityTimeout=HOLD_SECONDS,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            if not batch:
                return result
            work: list[tuple[dict[str, Any], Any]] = []
            for message in batch:
                sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
                if sent >= started_ms:
                    result.held.append(message["ReceiptHandle"])
                    continue
                try:
                    event = event_in(purpose, json.loads(message["Body"]))
                except ValueError:
                    event = None
                if event is None:
                    result.unreadable += 1
                    result.held.append(message["ReceiptHandle"])
                    continue
                work.append((message, event))
            answers = list(pool.map(lambda pair: replay(pair[1]), work))
            done = []
            for (message, _), answer in zip(work, answers, strict=True):
                outcome = (
                    answer.payload.get("outcome") if isinstance(answer.payload, dict) else None
                )
                if answer.error is not None or not outcome:
                    result.failed += 1
                    result.held.append(message["ReceiptHandle"])
                    continue
                result.outcomes[str(outcome)] += 1
                done.append(message["ReceiptHandle"])
            for start in range(0, len(done), BATCH):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle}
                        for i, handle in enumerate(done[start : start + BATCH])
                    ],
                )


def _release(sqs: Any, url: str, handles: list[str]) -> None:
    """Visible again now, for the next pass or the next redrive."""
    for start in range(0, len(handles), BATCH):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start : start + BATCH])
            ],
        )


def redrive_queue(
    ctx: Context,
    *,
    purpose: Queue,
    source_role: str,
    source_region: str,
    target_role: str,
    target_region: str,
    parallel: int = DEFAULT_PARALLEL,
) -> RedriveResult:
    """Replay one queue of `source_region` through the processor of `target_region`."""
    sqs = ctx.aws.client("sqs", source_region)
    url = queue_url(ctx, source_region, purpose, source_role)
    result = RedriveResult(purpose, source_region, target_region)

    def replay(event: Any) -> functions.Invocation:
        return functions.invoke_processor(ctx, target_role, target_region, event)

    for _ in range(MAX_PASSES):
        one = _one_pass(ctx, sqs, url, purpose, replay, parallel)
        _release(sqs, url, one.held)
        result.passes += 1
        result.outcomes.update(one.outcomes)
        # What is left is what the last pass left: each pass sees every message still there.
        result.failed = one.failed
        result.unreadable = one.unreadable
        result.held = len(one.held) - one.failed - one.unreadable
        progress = one.outcomes["PROCESSED"] + one.outcomes["DUPLICATE"]
        # Events parked again (a refund whose charge came later in this queue) get another go,
        # as long as the last pass moved something.
        if not (purpose is Queue.STANDBY and result.held and progress):
            break
    return result


def require_active(ctx: Context, region: str) -> None:
    """Replaying into a passive region only parks everything again: refuse."""
    reading = control.read(ctx, region, bounded=False)
    if reading.control is None or not reading.control.names(region):
        raise Refused(
            f"{region} is not the active region ({reading.describe()}): redrive replays through "
            "the active region's processor only"
        )


@dataclass(frozen=True)
class RedriveOptions:
    queues: tuple[Queue, ...] = (Queue.STANDBY,)
    source_role: str | None = None  # whose queues; default the active region's
    parallel: int = DEFAULT_PARALLEL


def active_role(ctx: Context) -> tuple[str, str]:
    """(role, region) of the active region, from the replicas that answer."""
    roles = ctx.region_roles()
    current = control.newest(control.read_all(ctx, roles.values()))
    for role, region in roles.items():
        if current is not None and current.names(region):
            return role, region
    raise Refused(
        "no region is active (region-control item: "
        f"{current.active_region if current else 'absent'}): nothing to replay into; "
        "finish the switchover/failover first"
    )


def run(ctx: Context, options: RedriveOptions) -> int:
    target_role, target_region = active_role(ctx)
    require_active(ctx, target_region)
    roles = ctx.region_roles()
    source_role = options.source_role or target_role
    source_region = roles[source_role]
    failed = False
    for purpose in options.queues:
        ctx.console.step(f"redrive {names.queue(purpose, source_role, ctx.env)} ({source_region})")
        result = redrive_queue(
            ctx,
            purpose=purpose,
            source_role=source_role,
            source_region=source_region,
            target_role=target_role,
            target_region=target_region,
            parallel=options.parallel,
        )
        for line in result.lines():
            ctx.console.result(line)
        failed = failed or bool(result.failed or result.unreadable)
    return EXIT_OK if not failed else 1
