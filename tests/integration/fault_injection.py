"""Fault injection and bookkeeping for the exactly-once tests (harness only, never in src/).

The adapters under test are the real ones; this module only sabotages what lies beneath them:
DynamoDB answers throttling at the HTTP layer (a botocore ``before-send`` hook, so botocore's own
standard retries and the deadline hook act), the ledger's MySQL connection is killed between
statements or loses the answer to its COMMIT, and a "crash" hits between the ledger commit and
the sessions write. ``deliver`` models Lambda's asynchronous invocation: an invocation that raises
is delivered again, up to three attempts (template.yaml MaximumRetryAttempts: 2), then the event
lands in the on-failure destination.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber

from payment_processor.handler import process
from payment_processor.models import PaymentDetail
from payment_processor.ports import PaymentRecord
from payment_processor.service import PaymentService
from payment_processor.wiring import build_service
from shared.adapters import aws
from shared.adapters.dynamodb import DynamoSessions
from shared.adapters.ledger import MySQLLedger
from shared.adapters.mysql import MySQLConnector
from shared.adapters.secrets import SecretCredentials
from shared.config import ProcessorSettings
from shared.errors import TransientError
from shared.observability import metrics
from tests.conftest import LambdaContextStub, ledger_rows

LAMBDA_ATTEMPTS = 3  # one invocation + MaximumRetryAttempts: 2 (template.yaml EventInvokeConfig)
ACCEPTED = frozenset({"PROCESSED", "DUPLICATE"})

# -- DynamoDB throttling at the HTTP layer ------------------------------------------------------

_THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
).encode()


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class Throttle:
    """Answers a fraction of the requests of the clients it is installed on with HTTP 400
    ProvisionedThroughputExceededException before moto sees them. Counts every HTTP attempt,
    every API call, and the most attempts one call needed."""

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        self.rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._per_call = threading.local()
        self.http_attempts = 0
        self.throttled = 0
        self.calls = 0
        self.most_attempts_for_one_call = 0

    def reset(self, rate: float, seed: int) -> None:
        with self._lock:
            self.rate = rate
            self._random = random.Random(seed)

    def install(self, client: Any) -> Any:
        # register_first on the generic event, after shared.deadline.install did the same: the
        # deadline check still runs before every attempt, and this hook runs before moto's.
        client.meta.events.register_first("before-send", self._before_send)
        client.meta.events.register("before-call", self._before_call)
        return client

    def _before_call(self, **_: Any) -> None:
        self._per_call.attempts = 0
        with self._lock:
            self.calls += 1

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        self._per_call.attempts = getattr(self._per_call, "attempts", 0) + 1
        with self._lock:
            self.http_attempts += 1
            self.most_attempts_for_one_call = max(
                self.most_attempts_for_one_call, self._per_call.attempts
            )
            throttle = self._random.random() < self.rate
            if throttle:
                self.throttled += 1
        if not throttle:
            return None
        headers = {
            "x-amzn-requestid": str(uuid.uuid4()),
            "content-type": "application/x-amz-json-1.0",
        }
        return AWSResponse(request.url, 400, headers, _Body(_THROTTLE_BODY))


class ScaledBackoff:
    """Stands in for the ``time`` module inside botocore.endpoint only: botocore still computes
    every backoff (standard mode, jitter, retry quota) and the deadline hook still judges it; the
    property test just waits ``scale`` of each delay so it can afford many examples."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self.requested_seconds = 0.0

    def sleep(self, seconds: float) -> None:
        self.requested_seconds += seconds
        time.sleep(seconds * self._scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def serialise_moto(monkeypatch: Any) -> None:
    """Real DynamoDB applies each request atomically; in-process moto does not when threads call
    it at once (a conditional update could interleave with another). One request at a time."""
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def locked(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", locked)


def serialise_metrics(monkeypatch: Any) -> None:
    """Each Lambda execution environment has its own Metrics buffer; here threads stand in for
    environments but share the module-level one, so add to it one at a time."""
    lock = threading.Lock()
    original = metrics.add_metric

    def add_metric(*args: Any, **kwargs: Any) -> None:
        with lock:
            original(*args, **kwargs)

    monkeypatch.setattr(metrics, "add_metric", add_metric)


# -- the ledger's MySQL connection, sabotaged ---------------------------------------------------

# Where the armed fault strikes: before the Nth statement of the next transaction, just before
# COMMIT (the transaction is rolled back), or just after it (committed, the answer lost).
LEDGER_FAULTS = ("kill@0", "kill@1", "kill@2", "kill@3", "kill@commit", "ack-lost")


class LedgerSaboteur:
    def __init__(self, mariadb: Any) -> None:
        self._mariadb = mariadb
        self._plan: str | None = None
        self._statement = 0
        self.fired: list[str] = []

    def arm(self, plan: str | None) -> None:
        self._plan = plan
        self._statement = 0

    def before_statement(self, conn: Any) -> None:
        if self._plan == f"kill@{self._statement}":
            self._kill(conn)
        self._statement += 1

    def before_commit(self, conn: Any) -> None:
        if self._plan == "kill@commit":
            self._kill(conn)

    def after_commit(self, conn: Any) -> None:
        if self._plan == "ack-lost":
            self._fire()
            conn._force_close()
            raise pymysql.err.OperationalError(
                2013, "Lost connection to MySQL server during query (injected after COMMIT)"
            )

    def _fire(self) -> None:
        assert self._plan is not None
        self.fired.append(self._plan)
        self._plan = None

    def _kill(self, conn: Any) -> None:
        self._fire()
        with self._mariadb.root() as root, root.cursor() as cur:
            cur.execute("KILL CONNECTION %s", (conn.thread_id(),))


class _SabotagedCursor(pymysql.cursors.Cursor):
    def execute(self, query: str, args: Any = None) -> int:
        saboteur = getattr(self.connection, "saboteur", None)
        # Session settings (the deadline's lock-wait bounds, set when they change) are not
        # statements of the transaction: kill@N counts the transaction's reads and writes.
        setting = isinstance(query, str) and query.startswith("SET SESSION")
        if saboteur is not None and not setting:
            saboteur.before_statement(self.connection)
        return int(super().execute(query, args))


class SabotagedConnector(MySQLConnector):
    """The real connector; the connections it opens are wired to a saboteur."""

    def __init__(self, *, saboteur: LedgerSaboteur, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.saboteur = saboteur
        self.connects = 0

    def connect(self, **kwargs: Any) -> Any:
        conn = super().connect(**kwargs)
        self.connects += 1
        saboteur = self.saboteur
        conn.saboteur = saboteur
        conn.cursorclass = _SabotagedCursor
        real_commit = conn.commit

        def commit() -> None:
            saboteur.before_commit(conn)
            real_commit()
            saboteur.after_commit(conn)

        conn.commit = commit
        return conn


class SabotagedLedger(MySQLLedger):
    """The real ledger over a sabotaged connector."""

    def __init__(self, connector: SabotagedConnector) -> None:
        super().__init__(connector)
        self.connector = connector

    @property
    def saboteur(self) -> LedgerSaboteur:
        return self.connector.saboteur

    @property
    def connects(self) -> int:
        return self.connector.connects


# -- a crash between the ledger commit and the sessions write -----------------------------------


class SimulatedCrash(Exception):
    """The execution environment died after the ledger committed, before the sessions write."""


class CrashingSessions:
    def __init__(self, inner: DynamoSessions) -> None:
        self._inner = inner
        self.crash_next = False
        self.crashes = 0

    def project(self, record: PaymentRecord) -> None:
        if self.crash_next:
            self.crash_next = False
            self.crashes += 1
            raise SimulatedCrash(f"crashed before projecting {record.payment_id}")
        self._inner.project(record)


# -- execution environments and Lambda's async retry --------------------------------------------


@dataclass(frozen=True)
class Faults:
    ledger: str | None = None  # one of LEDGER_FAULTS
    crash_before_sessions: bool = False
    remaining_ms: int = 30_000  # what the context says is left of the Lambda timeout


NO_FAULTS = Faults()


@dataclass
class Environment:
    """One Lambda execution environment: its own clients, ledger connection and caches."""

    service: PaymentService
    ledger: SabotagedLedger
    sessions: CrashingSessions
    throttle: Throttle
    dynamodb: Any

    def arm(self, faults: Faults) -> None:
        self.ledger.saboteur.arm(faults.ledger)
        self.sessions.crash_next = faults.crash_before_sessions

    def disarm(self) -> None:
        self.arm(NO_FAULTS)


def build_environment(
    settings: ProcessorSettings,
    mariadb: Any,
    throttle: Throttle | None = None,
    saboteur: LedgerSaboteur | None = None,
) -> Environment:
    """What payment_processor.wiring.build_service builds, with the saboteurs in between."""
    throttle = throttle or Throttle()
    dynamodb = throttle.install(aws.client("dynamodb", settings.aws_region))
    credentials = SecretCredentials(settings.db_secret_id, max_age=settings.secret_max_age_seconds)
    ledger = SabotagedLedger(
        SabotagedConnector(
            saboteur=saboteur or LedgerSaboteur(mariadb),
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
            credentials=credentials,
            tls=settings.db_tls,
            tls_ca_file=settings.db_tls_ca_file,
        )
    )
    sessions = CrashingSessions(DynamoSessions(dynamodb, settings.sessions_table))
    service = build_service(settings, dynamodb=dynamodb, ledger=ledger, sessions=sessions)
    credentials.get()  # warm the secret cache here, not in a worker thread
    return Environment(
        service=service, ledger=ledger, sessions=sessions, throttle=throttle, dynamodb=dynamodb
    )


@dataclass
class Delivery:
    event: dict[str, Any]
    response: dict[str, Any] | None = None  # None: it went to the failure destination
    errors: list[BaseException] = field(default_factory=list)
    redriven: bool = False

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def outcome(self) -> str | None:
        return None if self.response is None else str(self.response["outcome"])


def deliver(env: Environment, event: dict[str, Any], faults: Faults = NO_FAULTS) -> Delivery:
    """Lambda's asynchronous invocation of the handler (without its decorators)."""
    delivery = Delivery(event=event)
    for attempt in range(LAMBDA_ATTEMPTS):
        env.arm(faults if attempt == 0 else NO_FAULTS)
        remaining = faults.remaining_ms if attempt == 0 else NO_FAULTS.remaining_ms
        try:
            delivery.response = process(event, LambdaContextStub(remaining), service=env.service)
            return delivery
        except Exception as exc:  # Lambda fails the invocation on any error and retries it
            delivery.errors.append(exc)
        finally:
            env.disarm()
    return delivery


def new_event(detail: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An EventBridge event as the rule delivers it; a new id on every delivery, as EventBridge
    (and a global endpoint) may assign."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Payment Transaction",
        "source": "payment.service",
        "account": "123456789012",
        "time": "2026-11-28T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def payload_hash(detail: dict[str, Any]) -> str | None:
    try:
        return PaymentDetail.parse(detail).payload_hash()
    except ValueError:
        return None


# -- resetting and reading the world ------------------------------------------------------------


def reset_world(sandbox: Any) -> None:
    with sandbox.mariadb.root("payments") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ledger_entries")
        cur.execute("DELETE FROM payments")
    for item in sessions_items(sandbox).values():
        sandbox.dynamodb.delete_item(
            TableName=sandbox.env["SESSIONS_TABLE"], Key={"payment_id": item["payment_id"]}
        )
    sandbox.parked()  # drains the queue
    metrics.clear_metrics()


def sessions_items(sandbox: Any) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": sandbox.env["SESSIONS_TABLE"], "ConsistentRead": True}
    while True:
        page = sandbox.dynamodb.scan(**kwargs)
        for item in page["Items"]:
            items[item["payment_id"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass(frozen=True)
class Row:
    payment_id: str
    type: str
    original_payment_id: str | None
    amount_minor: int
    currency: str
    payload_hash: str
    refunded_minor: int


def payment_rows(mariadb: Any) -> dict[str, Row]:
    rows = ledger_rows(
        mariadb,
        "SELECT payment_id, type, original_payment_id, amount_minor, currency, payload_hash, "
        "refunded_minor FROM payments",
    )
    return {r[0]: Row(r[0], r[1], r[2], int(r[3]), r[4], r[5], int(r[6])) for r in rows}


# -- the invariants -----------------------------------------------------------------------------


def check_ledger(mariadb: Any) -> dict[str, Row]:
    """Balanced, one row per payment, refunds within their charge. Returns the rows."""
    rows = payment_rows(mariadb)
    assert ledger_rows(mariadb, "SELECT COUNT(*), COUNT(DISTINCT payment_id) FROM payments") == [
        (len(rows), len(rows))
    ]
    unbalanced = ledger_rows(
        mariadb,
        "SELECT currency, SUM(amount_minor) FROM ledger_entries GROUP BY currency "
        "HAVING SUM(amount_minor) <> 0",
    )
    assert unbalanced == [], f"ledger out of balance per currency: {unbalanced}"
    entries: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for payment_id, account, amount, currency in ledger_rows(
        mariadb, "SELECT payment_id, account, amount_minor, currency FROM ledger_entries"
    ):
        entries[payment_id].append((account.split(":")[0], int(amount), currency))
    assert set(entries) == set(rows), "entries without a payment or a payment without entries"
    refunded: Counter[str] = Counter()
    for row in rows.values():
        sign = 1 if row.type == "CHARGE" else -1
        assert sorted(entries[row.payment_id]) == [
            ("customer", -sign * row.amount_minor, row.currency),
            ("merchant", sign * row.amount_minor, row.currency),
        ], f"entries of {row.payment_id}: {entries[row.payment_id]}"
        if row.type == "REFUND":
            original = rows.get(row.original_payment_id or "")
            assert original is not None and original.type == "CHARGE", row
            assert original.currency == row.currency, row
            assert row.refunded_minor == 0, row
            refunded[original.payment_id] += row.amount_minor
    for row in rows.values():
        if row.type == "CHARGE":
            assert refunded[row.payment_id] == row.refunded_minor, (
                f"{row.payment_id}: refund rows sum to {refunded[row.payment_id]}, "
                f"refunded_minor says {row.refunded_minor}"
            )
            assert row.refunded_minor <= row.amount_minor, f"over-refunded: {row}"
    return rows


def in_flight(deliveries: list[Delivery]) -> frozenset[str]:
    """Payments a delivery in the failure destination may have left half-projected (the ledger
    committed, the sessions write did not happen): the payment and the charge it refunds."""
    ids: set[str] = set()
    for delivery in deliveries:
        if delivery.response is None:
            detail = delivery.event["detail"]
            ids.update(str(detail[k]) for k in ("payment_id", "original_payment_id") if k in detail)
    return frozenset(ids)


def check_sessions_agree(
    sandbox: Any, rows: dict[str, Row], *, pending: frozenset[str] = frozenset()
) -> None:
    """Every ledger row has its sessions item, equal in every projected field, and no item lacks
    its row; ``pending`` payments (see in_flight) are let off until they are redriven."""
    items = {k: v for k, v in sessions_items(sandbox).items() if k not in pending}
    rows = {k: v for k, v in rows.items() if k not in pending}
    assert set(items) == set(rows), (
        f"sessions without a ledger row: {sorted(set(items) - set(rows))}; "
        f"ledger rows without a sessions item: {sorted(set(rows) - set(items))}"
    )
    for payment_id, row in rows.items():
        item = items[payment_id]
        seen = (
            int(item["amount_minor"]["N"]),
            item["currency"]["S"],
            item["type"]["S"],
            int(item["refunded_minor"]["N"]),
            item["payload_hash"]["S"],
            item.get("original_payment_id", {}).get("S"),
        )
        expected = (
            row.amount_minor,
            row.currency,
            row.type,
            row.refunded_minor,
            row.payload_hash,
            row.original_payment_id,
        )
        assert seen == expected, f"sessions item {payment_id} {seen} != ledger {expected}"


# The parked codes each kind of event may legitimately end with.
VALID_EVENT_PARK_CODES = frozenset(
    {
        "CONFLICT",
        "ORIGINAL_NOT_FOUND",
        "REFUND_EXCEEDS_CHARGE",
        "REFUND_CURRENCY_MISMATCH",
        "REFUND_PARTY_MISMATCH",
        "REFUND_OF_REFUND",
    }
)
INVALID_EVENT_PARK_CODES = frozenset({"INVALID_EVENT", "CARD_NUMBER_IN_EVENT"})


def check_deliveries(
    deliveries: list[Delivery],
    parked: list[dict[str, Any]],
    rows: dict[str, Row],
    *,
    transient: tuple[type[BaseException], ...] = (TransientError, SimulatedCrash),
) -> None:
    """Every delivery is accounted for: accepted (its payload is the ledger's row), or parked with
    its reason, or in the failure destination after retries of transient errors only."""
    parked_by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in parked:
        parked_by_id[message["event"]["id"]].append(message)
    processed: Counter[str] = Counter()
    for delivery in deliveries:
        what = f"delivery {delivery.event_id} {json.dumps(delivery.event['detail'])[:160]}"
        for error in delivery.errors:
            assert isinstance(error, transient), f"{what}: non-transient failure {error!r}"
        if delivery.response is None:
            assert len(delivery.errors) == LAMBDA_ATTEMPTS
            assert delivery.event_id not in parked_by_id, what
            continue
        outcome = delivery.outcome
        detail = delivery.event["detail"]
        digest = payload_hash(detail)
        row = rows.get(detail.get("payment_id", ""))
        messages = parked_by_id.pop(delivery.event_id, [])
        if outcome in ACCEPTED:
            assert row is not None and row.payload_hash == digest, f"{what}: {outcome}, no row"
            assert messages == [], f"{what}: accepted yet parked"
            processed[row.payment_id] += outcome == "PROCESSED"
            continue
        assert len(messages) == 1, f"{what}: {outcome} but parked {len(messages)} times"
        message = messages[0]
        reason = delivery.response["reason"]
        assert message["outcome"] == outcome, (what, message["outcome"])
        assert reason == f"{message['code']}: {message['reason']}", (what, reason)
        if message["code"] in INVALID_EVENT_PARK_CODES:
            assert outcome == "REJECTED", what
            assert digest is None or row is None or row.payload_hash != digest, what
            continue
        assert digest is not None, f"{what}: an invalid event parked as {message['code']}"
        assert message["code"] in VALID_EVENT_PARK_CODES, (what, message["code"])
        if outcome == "CONFLICT":
            assert row is not None and row.payload_hash != digest, f"{what}: CONFLICT with what?"
        if outcome == "REJECTED":
            assert row is None or row.payload_hash != digest, (
                f"{what}: answered {reason!r} although the ledger recorded this very payment"
            )
        if message["code"] == "REFUND_EXCEEDS_CHARGE":
            charge = rows[detail["original_payment_id"]]
            left = charge.amount_minor - charge.refunded_minor
            assert detail["amount_minor"] > left, f"{what}: rejected, yet {left} is left"
    assert not parked_by_id, f"parked messages no delivery answered with: {dict(parked_by_id)}"
    twice = {payment_id: n for payment_id, n in processed.items() if n > 1}
    assert not twice, f"answered PROCESSED more than once: {twice}"


def check_no_phantom_rows(deliveries: list[Delivery], rows: dict[str, Row]) -> None:
    """Every ledger row is the payload of some delivered event, and every accepted answer's
    payload is the row its payment_id holds."""
    delivered_hashes = {payload_hash(d.event["detail"]) for d in deliveries}
    for row in rows.values():
        assert row.payload_hash in delivered_hashes, f"ledger row no event asked for: {row}"
    for delivery in deliveries:
        if delivery.outcome in ACCEPTED:
            row = rows[delivery.event["detail"]["payment_id"]]
            assert row.payload_hash == payload_hash(delivery.event["detail"])
