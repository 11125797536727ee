"""Fixtures shared by every test layer: Powertools caches cleared, AWS from moto (tables, queues
and secret built from the templates), and a real MariaDB server for the ledger."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# Property tests run their bounded number of examples in `make test`; HYPOTHESIS_PROFILE=long
# runs the ones that do not fix their own count (the crash-freedom tests, the unit properties)
# with 5,000 examples each.
settings.register_profile("long", max_examples=5_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
EVENTS = ROOT / "events"
ENV = "test"
PRIMARY = "us-east-1"
APP_USER = "payments_app"
APP_PASSWORD = "Tst-ledger-pw-7731"  # a known value, so the log scan can look for it
# The cluster's master user as Aurora MySQL 3 makes it: broad privileges, WITH GRANT OPTION, but
# no SUPER (so a read-only server refuses it too, as Aurora's secondary does).
MASTER_USER = "dr_admin"
MASTER_PASSWORD = "Tst-master-pw-5519"
MASTER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
    "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
    "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, "
    "EVENT, TRIGGER"
)


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@pytest.fixture(autouse=True)
def _clear_caches() -> Iterator[None]:
    from aws_lambda_powertools.utilities import parameters

    from health import wiring as health_wiring
    from ledger_export import wiring as export_wiring
    from payment_processor import wiring as processor_wiring
    from replication_monitor import wiring as monitor_wiring
    from shared import config

    caches = (
        config.get_processor_settings,
        config.get_health_settings,
        config.get_monitor_settings,
        config.get_ledger_export_settings,
        processor_wiring.get_service,
        health_wiring.get_service,
        monitor_wiring.get_monitor,
        export_wiring.get_rows,
    )
    for cache in caches:
        cache.cache_clear()
    parameters.clear_caches()
    yield
    for cache in caches:
        cache.cache_clear()
    parameters.clear_caches()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials, a fixed region, no endpoint override."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": PRIMARY,
        "AWS_REGION": PRIMARY,
        "POWERTOOLS_METRICS_NAMESPACE": "DrPayment",
        "POWERTOOLS_SERVICE_NAME": "payment-processor",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# -- MariaDB ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ops.sandbox.mariadb import MariaDBServer
    from shared.adapters import ledger_schema

    server = MariaDBServer(tmp_path_factory.mktemp("mariadb")).start()
    try:
        with server.root() as conn:
            ledger_schema.apply(conn, "payments")
            ledger_schema.ensure_app_user(conn, "payments", APP_USER, APP_PASSWORD)
            create_master_user(conn)
        yield server
    finally:
        server.stop()


def create_master_user(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (MASTER_USER, MASTER_PASSWORD)
        )
        cur.execute(f"GRANT {MASTER_PRIVILEGES} ON *.* TO '{MASTER_USER}'@'%' WITH GRANT OPTION")


@pytest.fixture
def ledger_db(mariadb: Any) -> Iterator[Any]:
    """An empty, writable ledger for each test."""
    mariadb.set_read_only(False)
    with mariadb.root("payments") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ledger_entries")
        cur.execute("DELETE FROM payments")
    yield mariadb
    mariadb.set_read_only(False)


@contextmanager
def started_replica_pair(directory: Path) -> Iterator[Any]:
    """The two-region ledger (ops/sandbox/replication.py) in `directory`: us-east-1's server
    takes writes, us-west-2's is its real binlog replica, read-only. Schema and app user are
    applied on the writer and arrive on the replica by replication; stopped on the way out."""
    from ops.sandbox.replication import Topology
    from ops.sandbox.resources import REGIONS
    from shared.adapters import ledger_schema

    topology = Topology.start(directory, [REGIONS["primary"], REGIONS["secondary"]])
    try:
        with topology.primary.root() as conn:
            ledger_schema.apply(conn, "payments")
            ledger_schema.ensure_app_user(conn, "payments", APP_USER, APP_PASSWORD)
        topology.wait_caught_up()
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def replica_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shared two-region ledger (started_replica_pair), started on first use, so only the
    tests that ask for it pay for it. Tests that kill or promote a server start a pair of their
    own."""
    with started_replica_pair(tmp_path_factory.mktemp("ledger-pair")) as topology:
        yield topology


@pytest.fixture
def replicated_ledger(replica_pair: Any) -> Iterator[Any]:
    """The pair with empty ledger tables, replicating with no delay and caught up."""
    from ops.sandbox.resources import REGIONS

    assert replica_pair.writer == REGIONS["primary"], "a test moved the writer of the shared pair"
    replica_pair.delay(0)
    replica_pair.release()
    with replica_pair.primary.root("payments") as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM ledger_entries")
        cur.execute("DELETE FROM payments")
    replica_pair.wait_caught_up()
    yield replica_pair
    replica_pair.delay(0)
    replica_pair.release()


# -- AWS (moto) ---------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """What a test needs to drive the real handler against moto and MariaDB."""

    env: dict[str, str]
    dynamodb: Any
    sqs: Any
    queues: dict[str, str]
    mariadb: Any

    def parked(self) -> list[dict[str, Any]]:
        """Drain both queues set-aside events go to: standby first, then rejected."""
        return self.standby() + self.rejected()

    def standby(self) -> list[dict[str, Any]]:
        """Drain the standby queue (valid events set aside for redrive)."""
        return self._drain("standby")

    def rejected(self) -> list[dict[str, Any]]:
        """Drain the rejected queue (invalid or conflicting events, for a person)."""
        return self._drain("rejected")

    def _drain(self, purpose: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queues[purpose], MaxNumberOfMessages=10
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queues[purpose], ReceiptHandle=message["ReceiptHandle"]
                )

    def session_item(self, payment_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.env["SESSIONS_TABLE"],
            Key={"payment_id": {"S": payment_id}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else dict(item)

    def set_active_region(self, region: str) -> None:
        from ops.sandbox import resources

        resources.seed_active_region(self.dynamodb, ENV, region)


@pytest.fixture
def sandbox(ledger_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """moto (in-process) with the stack's tables, queues and secret, the region-control item
    naming us-east-1, and the processor's environment set as the template sets it."""
    import boto3
    from moto import mock_aws

    from ops.sandbox import resources
    from shared import names

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=PRIMARY)
        sqs = boto3.client("sqs", region_name=PRIMARY)
        secrets = boto3.client("secretsmanager", region_name=PRIMARY)
        resources.create_tables(dynamodb, ENV)
        queues = resources.create_queues(sqs, "primary", ENV)
        secret_arn = resources.create_app_secret(secrets, ENV, APP_USER, APP_PASSWORD)
        resources.seed_active_region(dynamodb, ENV, PRIMARY)
        env = {
            "ENVIRONMENT": ENV,
            "REGION_ROLE": "primary",
            "SESSIONS_TABLE": names.sessions_table(ENV),
            "REGION_CONTROL_TABLE": names.region_control_table(ENV),
            "STANDBY_QUEUE_URL": queues["standby"],
            "REJECTED_QUEUE_URL": queues["rejected"],
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(ledger_db.port),
            "DB_NAME": "payments",
            "DB_SECRET_ID": secret_arn,
            "DB_TLS": "false",
            "MAX_AMOUNT_MINOR": "100000000",
            "REGION_GATE_CACHE_SECONDS": "0",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Sandbox(env=env, dynamodb=dynamodb, sqs=sqs, queues=queues, mariadb=ledger_db)


class LambdaContextStub:
    """The parts of the Lambda context the handler and Powertools read."""

    function_name = "dr-payment-processor-primary-test"
    function_version = "$LATEST"
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:dr-payment-processor-primary-test"
    )
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/dr-payment-processor-primary-test"
    log_stream_name = "test"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


def ledger_rows(mariadb: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with mariadb.root("payments") as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
