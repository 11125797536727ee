"""Replication moto does not do, with a lag the drill sets and measures.

- Global tables (infra-global/tables.yaml): every write in one region's replica reaches the
  other's after a lag, read from the table's stream as DynamoDB's own replication reads it. A
  dead region's writes wait in it and replicate when it answers again; writes to it wait too.
  DynamoDB settles concurrent writes by last writer wins, on its own write timestamps, at the
  replica, atomically. The sandbox cannot timestamp a moto write atomically, so a replicated
  write is applied only when it carries a newer version of the item than the target holds,
  the version each table's writers already keep: the region-control item's `epoch`, a sessions
  item's `refunded_minor`. Every writer of these items writes them in version order (the
  epoch rule, the projection's guard), so this settles exactly as last writer wins would, and a
  late or reordered replicated write can never put an older state back.
- The documents buckets (infra-global/buckets.yaml, CRR): objects copied to the other region's
  bucket after a lag (deletes are not replicated, as CRR without delete-marker replication).
  The drill writes a canary object a second, so the lag is measured even when nothing else
  writes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.sandbox.drill.harness import Clients, Regions
from shared import names

POLL_SECONDS = 0.2


@dataclass
class Lag:
    """Observed replication lags (seconds) of one store; writes that waited for a dead region
    are counted apart (their "lag" is the outage)."""

    samples: list[float] = field(default_factory=list)
    held: int = 0

    def add(self, seconds: float, *, held: bool = False) -> None:
        if held:
            self.held += 1
        else:
            self.samples.append(seconds)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"count": 0, "held_by_an_outage": self.held}
        ordered = sorted(self.samples)
        return {
            "held_by_an_outage": self.held,
            "count": len(ordered),
            "mean_s": round(sum(ordered) / len(ordered), 3),
            "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
            "max_s": round(ordered[-1], 3),
        }


@dataclass(order=True)
class _Write:
    due: float
    seq: int
    source: str = field(compare=False)
    target: str = field(compare=False)
    table: str = field(compare=False)
    keys: dict[str, Any] = field(compare=False)
    image: dict[str, Any] | None = field(compare=False)  # None: a delete
    written_at: float = field(compare=False)
    held: bool = field(default=False, compare=False)  # waited for a dead region


def versions(env: str) -> dict[str, str]:
    """Per table, the attribute that orders an item's states (see the module's docstring)."""
    return {names.region_control_table(env): "epoch", names.sessions_table(env): "refunded_minor"}


def _conditional(image: dict[str, Any], keys: dict[str, Any], version: str) -> dict[str, Any]:
    """PutItem arguments that write `image` only over an older version of the item."""
    return {
        "ConditionExpression": "attribute_not_exists(#k) OR #v < :v",
        "ExpressionAttributeNames": {"#k": next(iter(keys)), "#v": version},
        "ExpressionAttributeValues": {":v": image[version]},
    }


def _fingerprint(image: dict[str, Any] | None) -> str:
    return json.dumps(image, sort_keys=True)


class GlobalTables:
    def __init__(
        self, clients: Clients, regions: Regions, env: str, *, lag: tuple[float, float],
        rng: random.Random,
    ) -> None:  # fmt: skip
        self._clients = clients
        self._regions = regions
        self._tables = names.tables(env)
        self._versions = versions(env)
        self._last_due: dict[tuple[str, str, str], float] = {}  # per item: in stream order
        self._lag = lag
        self._rng = rng
        self._iterators: dict[tuple[str, str], str] = {}
        self._pending: list[_Write] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # What we replicated into a region, so its stream's record of it is not sent back (the
        # conditional write would refuse it anyway; this saves the round trip).
        self._echoes: set[tuple[str, str, str]] = set()
        self.lag = Lag()
        self.errors: Counter[str] = Counter()
        self._back: set[str] = set()  # regions answering the tables before anything else
        self._thread = threading.Thread(target=self._loop, name="global-tables", daemon=True)

    def start(self) -> GlobalTables:
        for region in self._regions.names.values():
            dynamodb = self._clients.get("dynamodb", region)
            streams = self._clients.get("dynamodbstreams", region)
            for table in self._tables:
                arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
                shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
                self._iterators[(region, table)] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
                )["ShardIterator"]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def _dead(self, region: str) -> bool:
        return self._regions.dead(region) and region not in self._back

    def wait_caught_up(self, region: str, timeout: float) -> bool:
        """A region that answers again: every write made elsewhere meanwhile reaches it (or is
        refused there as older) before its functions run, as DynamoDB brings a recovered
        replica up to date."""
        self._back.add(region)
        now = time.time()
        self._stop.wait(2 * POLL_SECONDS)  # the streams read up to now
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                behind = any(w.target == region and w.written_at <= now for w in self._pending)
            if not behind:
                return True
            self._stop.wait(0.05)
        return False

    def backlog(self) -> str:
        with self._lock:
            return f"{len(self._pending)} pending, errors {dict(self.errors)}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            for (region, table), iterator in list(self._iterators.items()):
                if not self._dead(region):
                    self._read(region, table, iterator)
            self._apply_due()
            self._stop.wait(POLL_SECONDS)

    def _read(self, region: str, table: str, iterator: str) -> None:
        try:
            page = self._clients.get("dynamodbstreams", region).get_records(ShardIterator=iterator)
        except (BotoCoreError, ClientError):
            return
        self._iterators[(region, table)] = page.get("NextShardIterator") or iterator
        now = time.time()
        for record in page.get("Records", []):
            data = record["dynamodb"]
            echo = (region, table, _fingerprint(data.get("NewImage")))
            with self._lock:
                if echo in self._echoes:
                    self._echoes.discard(echo)
                    continue
            image = data.get("NewImage")
            if image is not None and self._versions[table] not in image:
                # moto's UpdateItem of a new item first records the bare key, then the item:
                # not a state of the item, never replicated.
                continue
            created = data.get("ApproximateCreationDateTime")
            written_at = created.timestamp() if created is not None else now
            item = (region, table, json.dumps(data["Keys"], sort_keys=True))
            due = max(now + self._rng.uniform(*self._lag), self._last_due.get(item, 0.0) + 1e-3)
            self._last_due[item] = due  # one item's writes replicate in the order made
            write = _Write(
                due, next(self._seq), region, self._regions.other(region), table,
                data["Keys"], image, written_at,
            )  # fmt: skip
            with self._lock:
                heapq.heappush(self._pending, write)

    def _apply_due(self) -> None:
        now = time.time()
        with self._lock:
            due = []
            while self._pending and self._pending[0].due <= now:
                due.append(heapq.heappop(self._pending))
        for write in due:
            if self._dead(write.target) or self._dead(write.source):
                write.due = now + 0.2  # waits in its region, or for the target to answer
                write.held = True
                with self._lock:
                    heapq.heappush(self._pending, write)
                continue
            dynamodb = self._clients.get("dynamodb", write.target)
            try:
                if write.image is None:
                    dynamodb.delete_item(TableName=write.table, Key=write.keys)
                else:
                    version = self._versions[write.table]
                    dynamodb.put_item(
                        TableName=write.table,
                        Item=write.image,
                        **_conditional(write.image, write.keys, version),
                    )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code == "ConditionalCheckFailedException":
                    continue  # the target already holds this version or a newer one
                self.errors[code] += 1
                self._retry(write)
                continue
            except BotoCoreError as exc:
                self.errors[type(exc).__name__] += 1
                self._retry(write)
                continue
            with self._lock:
                self._echoes.add((write.target, write.table, _fingerprint(write.image)))
            self.lag.add(time.time() - write.written_at, held=write.held)

    def _retry(self, write: _Write) -> None:
        write.due = time.time() + 0.2
        with self._lock:
            heapq.heappush(self._pending, write)


class Buckets:
    """CRR between the two documents buckets, plus the drill's canary objects."""

    def __init__(
        self, clients: Clients, regions: Regions, buckets: dict[str, str], *,
        lag: tuple[float, float], rng: random.Random,
    ) -> None:  # fmt: skip
        self._clients = clients
        self._regions = regions
        self._buckets = buckets  # region -> bucket
        self._lag = lag
        self._rng = rng
        self._seen: dict[tuple[str, str], float] = {}  # (region, key) -> first seen
        self._copied: set[tuple[str, str]] = set()
        self._due: dict[tuple[str, str], float] = {}
        self._held: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._canaries = itertools.count()
        self.lag = Lag()
        self._thread = threading.Thread(target=self._loop, name="buckets", daemon=True)

    def start(self) -> Buckets:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def idle(self) -> bool:
        return not self._due

    def canary(self, region: str) -> None:
        """A small object in `region`'s bucket (what the replication monitor's canary does)."""
        if self._regions.dead(region):
            return
        key = f"drill-canary/{next(self._canaries):06d}"
        try:
            self._clients.get("s3", region).put_object(
                Bucket=self._buckets[region], Key=key, Body=str(time.time()).encode()
            )
        except (BotoCoreError, ClientError):
            pass

    def _loop(self) -> None:
        last_canary = 0.0
        while not self._stop.is_set():
            now = time.time()
            if now - last_canary >= 1.0:
                self.canary(self._regions.names["primary"])
                last_canary = now
            for region, bucket in self._buckets.items():
                if not self._regions.dead(region):
                    self._list(region, bucket, now)
            self._copy_due(now)
            self._stop.wait(0.5)

    def _list(self, region: str, bucket: str, now: float) -> None:
        try:
            listed = self._clients.get("s3", region).list_objects_v2(Bucket=bucket)
        except (BotoCoreError, ClientError):
            return
        for item in listed.get("Contents", []):
            key = (region, item["Key"])
            if key in self._seen or key in self._copied:  # ours, or copied here
                continue
            self._seen[key] = now
            self._due[key] = now + self._rng.uniform(*self._lag)

    def _copy_due(self, now: float) -> None:
        for (region, object_key), due in list(self._due.items()):
            target = self._regions.other(region)
            if due > now:
                continue
            if self._regions.dead(target) or self._regions.dead(region):
                self._held.add((region, object_key))
                continue
            try:
                source = self._clients.get("s3", region)
                got = source.get_object(Bucket=self._buckets[region], Key=object_key)
                self._clients.get("s3", target).put_object(
                    Bucket=self._buckets[target], Key=object_key, Body=got["Body"].read()
                )
            except (BotoCoreError, ClientError):
                continue
            del self._due[(region, object_key)]
            self._copied.add((target, object_key))
            self.lag.add(
                time.time() - self._seen[(region, object_key)],
                held=(region, object_key) in self._held,
            )
