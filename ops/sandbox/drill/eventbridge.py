"""EventBridge as the drill needs it, around what moto does (a bus, a rule, its target queue):

- GlobalEndpoint: producers' PutEvents go to the primary bus while Route 53 calls the primary
  healthy, else to the secondary (infra-global/dns.yaml FailoverConfig), and every accepted event
  is replicated to the other region's bus after a lag (ReplicationConfig ENABLED). Replication
  is asynchronous: an event accepted by a region that dies before it is replicated waits in that
  region (EventBridge keeps it) and is replicated when the region answers again. That is the
  residual loss window ARCHITECTURE.md names; the drill counts it at the kill.
- Delivery: the rule's target, Lambda's asynchronous invoke of the processor's `live` alias
  (EventInvokeConfig of template.yaml): throttled invocations (reserved concurrency 0 while
  fenced) retried until MaximumEventAgeInSeconds, a function error retried twice (1 and 2 min
  later), then the on-failure destination (FailuresQueue). EventBridge delivers at least once:
  a share of deliveries is made twice. Durations scale with the drill's speedup.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.sandbox.drill.harness import INVOKE, QUICK, Clients, Regions, Timeline, iso
from shared import names

MAX_RETRIES = 2  # EventInvokeConfig.MaximumRetryAttempts
RETRY_DELAYS = (60.0, 120.0)  # Lambda's async retry schedule (about 1 min, then 2 min)
MAX_EVENT_AGE = 3600.0  # EventInvokeConfig.MaximumEventAgeInSeconds
PARALLEL = 4  # concurrent invocations per region


@dataclass
class Replication:
    payment_id: str
    source: str
    target: str
    accepted_at: float
    replicated_at: float | None = None


class GlobalEndpoint:
    def __init__(
        self,
        clients: Clients,
        regions: Regions,
        healthy: Callable[[str], bool],
        env: str,
        *,
        lag: tuple[float, float],
        rng: random.Random,
    ) -> None:
        self._clients = clients
        self._regions = regions
        self._healthy = healthy
        self._bus = names.event_bus(env)
        self._lag = lag
        self._rng = rng
        self._pending: list[tuple[float, int, Replication, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.replications: list[Replication] = []
        self._thread = threading.Thread(target=self._replicate, name="eb-replication", daemon=True)

    def start(self) -> GlobalEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def route(self) -> str:
        primary = self._regions.names["primary"]
        return primary if self._healthy(primary) else self._regions.names["secondary"]

    def put(self, detail: dict[str, Any]) -> str | None:
        """PutEvents through the global endpoint; the region that accepted it, or None (the
        producer retries, as an SDK would)."""
        region = self.route()
        entry = {
            "EventBusName": self._bus,
            "Source": "payment.service",
            "DetailType": "Payment Transaction",
            "Detail": json.dumps(detail),
        }
        try:
            answer = self._clients.get("events", region, QUICK).put_events(Entries=[entry])
        except (BotoCoreError, ClientError):
            return None
        if answer.get("FailedEntryCount"):
            return None
        now = time.time()
        replication = Replication(
            str(detail.get("payment_id")), region, self._regions.other(region), now
        )
        due = now + self._rng.uniform(*self._lag)
        with self._lock:
            self.replications.append(replication)
            heapq.heappush(self._pending, (due, next(self._seq), replication, entry))
        self._wake.set()
        return region

    def pending_from(self, region: str) -> list[Replication]:
        """Accepted by `region`, not yet on the other bus."""
        with self._lock:
            return [r for _, _, r, _ in self._pending if r.source == region]

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def _replicate(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = time.time()
            ready: list[tuple[float, int, Replication, dict[str, Any]]] = []
            with self._lock:
                waiting: list[tuple[float, int, Replication, dict[str, Any]]] = []
                while self._pending and self._pending[0][0] <= now:
                    item = heapq.heappop(self._pending)
                    replication = item[2]
                    dead = self._regions.dead(replication.source) or self._regions.dead(
                        replication.target
                    )
                    (waiting if dead else ready).append(item)
                for item in waiting:  # held in its region until both answer
                    heapq.heappush(self._pending, (now + 0.2, item[1], item[2], item[3]))
                next_due = self._pending[0][0] if self._pending else now + 0.5
            for _, seq, replication, entry in ready:
                entry = {**entry, "EventBusName": self._bus}
                try:
                    client = self._clients.get("events", replication.target, QUICK)
                    failed = client.put_events(Entries=[entry]).get("FailedEntryCount")
                except (BotoCoreError, ClientError):
                    failed = 1
                if failed:
                    with self._lock:
                        heapq.heappush(self._pending, (time.time() + 0.2, seq, replication, entry))
                else:
                    replication.replicated_at = time.time()
            self._wake.wait(max(0.01, min(0.5, next_due - time.time())))


@dataclass
class Delivered:
    at: float
    region: str
    payment_id: str
    outcome: str  # PROCESSED DUPLICATE CONFLICT REJECTED PARKED, or FAILED (failure destination)
    attempt: int
    duplicate_delivery: bool = False
    code: str = ""  # the parked/rejected reason code, or why it failed
    waited_s: float = 0.0  # from the rule's delivery to this answer (Lambda's queue, retries)


@dataclass(order=True)
class _Work:
    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    first_at: float = field(compare=False)
    attempts: int = field(default=0, compare=False)
    throttles: int = field(default=0, compare=False)


def _payment_id(event: Any) -> str:
    detail = event.get("detail") if isinstance(event, dict) else None
    return str(detail.get("payment_id", "-")) if isinstance(detail, dict) else "-"


class RegionDelivery:
    """The rule's target in one region: its stand-in queue read as Lambda's async queue."""

    def __init__(
        self,
        clients: Clients,
        regions: Regions,
        role: str,
        env: str,
        *,
        inbox_url: str,
        failures_url: str,
        speedup: float,
        duplicate_rate: float,
        rng: random.Random,
        log: Callable[[Delivered], None],
    ) -> None:
        self.region = regions.names[role]
        self._clients = clients
        self._regions = regions
        self._function = names.processor_function(role, env)
        self._inbox, self._failures = inbox_url, failures_url
        self._speedup = speedup
        self._duplicate_rate = duplicate_rate
        self._rng = rng
        self._rng_lock = threading.Lock()
        self._log = log
        self._queue: list[_Work] = []
        self._seq = itertools.count()
        self._running = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # an invocation ended: a slot is free
        self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"lambda-{self.region}")
        self._thread = threading.Thread(
            target=self._loop, name=f"delivery-{self.region}", daemon=True
        )

    def start(self) -> RegionDelivery:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def idle(self) -> bool:
        with self._lock:
            return not self._queue and not self._running

    def backlog(self) -> int:
        with self._lock:
            return len(self._queue) + self._running

    def _push(self, work: _Work) -> None:
        with self._lock:
            heapq.heappush(self._queue, work)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._regions.dead(self.region):
                self._regions.wait_alive(self.region, 0.2)  # its Lambda service is down too
                continue
            self._dispatch_due()
            try:
                taken = self._take()
            except (BotoCoreError, ClientError):
                taken = 0  # the region died under the call: its queue keeps the messages
            if not taken:
                self._wake.wait(0.2)
                self._wake.clear()

    def _take(self) -> int:
        """Messages the rule delivered, into Lambda's async queue (in memory, as Lambda's own
        is durable: it survives its region's outage)."""
        sqs = self._clients.get("sqs", self.region)
        batch = sqs.receive_message(
            QueueUrl=self._inbox, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        now = time.time()
        for message in batch:
            self._push(_Work(now, next(self._seq), json.loads(message["Body"]), now))
        if batch:
            sqs.delete_message_batch(
                QueueUrl=self._inbox,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return len(batch)

    def _dispatch_due(self) -> None:
        now = time.time()
        while True:
            with self._lock:
                if self._running >= PARALLEL or not self._queue or self._queue[0].due > now:
                    return
                work = heapq.heappop(self._queue)
                self._running += 1
            self._pool.submit(self._run, work)

    def _run(self, work: _Work) -> None:
        try:
            self._invoke(work)
        except (BotoCoreError, ClientError):  # its region died mid-way: keep it for later
            work.due = time.time() + 0.5
            self._push(work)
        finally:
            with self._lock:
                self._running -= 1
            self._wake.set()

    def _chance(self, rate: float) -> bool:
        with self._rng_lock:
            return self._rng.random() < rate

    def _call(self, event: dict[str, Any]) -> tuple[str, Any]:
        """('ok' | 'error' | 'throttled' | 'unreachable', payload)."""
        try:
            answer = self._clients.get("lambda", self.region, INVOKE).invoke(
                FunctionName=self._function,
                Qualifier=names.PROCESSOR_ALIAS,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            return ("throttled" if code == "TooManyRequestsException" else "unreachable"), code
        except BotoCoreError as exc:
            return "unreachable", type(exc).__name__
        payload = json.loads(answer["Payload"].read() or b"null")
        return ("error" if answer.get("FunctionError") else "ok"), payload

    def _invoke(self, work: _Work) -> None:
        kind, payload = self._call(work.event)
        now = time.time()
        pid = _payment_id(work.event)
        if kind == "ok":
            self._record(now, pid, payload, work, duplicate=False)
            if self._chance(self._duplicate_rate):  # at-least-once: the same event again
                kind2, again = self._call(work.event)
                if kind2 == "ok":
                    self._record(time.time(), pid, again, work, duplicate=True)
            return
        age = now - work.first_at
        if kind == "unreachable":
            work.due = now + 0.5  # its region died under it: delivered once it answers
        elif kind == "throttled":
            if age > MAX_EVENT_AGE / self._speedup:
                self._fail(work, "EventAgeExceeded", payload)
                return
            work.throttles += 1
            work.due = now + min(1.0, 0.05 * 2**work.throttles)
        else:
            work.attempts += 1
            if work.attempts > MAX_RETRIES:
                self._fail(work, "RetriesExhausted", payload)
                return
            work.due = now + RETRY_DELAYS[work.attempts - 1] / self._speedup
        self._push(work)

    def _record(self, at: float, pid: str, payload: Any, work: _Work, *, duplicate: bool) -> None:
        answer = payload if isinstance(payload, dict) else {}
        reason = str(answer.get("reason") or "")
        self._log(
            Delivered(
                at,
                self.region,
                str(answer.get("payment_id") or pid),
                str(answer.get("outcome", "?")),
                work.attempts + 1,
                duplicate,
                reason.split(":", 1)[0],
                round(at - work.first_at, 3),
            )
        )

    def _fail(self, work: _Work, condition: str, payload: Any) -> None:
        """Lambda's on-failure destination record, as template.yaml routes it."""
        record = {
            "version": "1.0",
            "timestamp": iso(time.time()),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.region}:123456789012:function:"
                f"{self._function}:{names.PROCESSOR_ALIAS}",
                "condition": condition,
                "approximateInvokeCount": work.attempts + work.throttles,
            },
            "requestPayload": work.event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": payload,
        }
        self._clients.get("sqs", self.region).send_message(
            QueueUrl=self._failures, MessageBody=json.dumps(record, default=str)
        )
        self._log(
            Delivered(
                time.time(), self.region, _payment_id(work.event), "FAILED", 0, False, condition
            )
        )


class DeliveryLog:
    def __init__(self, timeline: Timeline) -> None:
        self.records: list[Delivered] = []
        self._lock = threading.Lock()
        self._timeline = timeline

    def add(self, delivered: Delivered) -> None:
        with self._lock:
            self.records.append(delivered)

    def snapshot(self) -> list[Delivered]:
        with self._lock:
            return list(self.records)
