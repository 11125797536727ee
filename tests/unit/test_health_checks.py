"""HealthFunction with fakes: the verdict per role, the public answer, the budget and the cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel

from health.checks import (
    AURORA_REPLICA,
    AURORA_WRITER,
    NO_HEARTBEAT,
    READ_ONLY_WHILE_ACTIVE,
    HealthReport,
    HealthService,
    health_checks,
)
from health.handler import respond
from shared import config
from shared.config import HealthSettings
from shared.errors import DocumentsUnavailable, LedgerUnavailable, RegionStateUnavailable
from shared.observability import metrics
from tests.conftest import load_event

EVENT = "health_function_url.json"
SECRET_DETAIL = "cannot connect to the ledger (MySQL error 2003)"


class Ledger:
    def __init__(self, *, writable: bool = True, error: Exception | None = None) -> None:
        self.writable, self.error, self.calls = writable, error, 0

    def is_writable(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.writable


class Replica:
    """This region's reader: the age of the newest replication heartbeat it holds."""

    def __init__(self, *, age: float | None = 12.0, error: Exception | None = None) -> None:
        self.age, self.error, self.calls = age, error, 0

    def heartbeat_age(self) -> float | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.age


class Gate:
    def __init__(self, *, active: bool = True, error: Exception | None = None) -> None:
        self.active, self.error, self.calls = active, error, 0

    def is_active(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.active


class Documents:
    def __init__(self, *, error: Exception | None = None) -> None:
        self.error, self.calls = error, 0

    def head(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


class HangingDocuments:
    """Blocks until the test releases it; `finished` says whether the hang has ended."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()

    def head(self) -> None:
        self.release.wait(timeout=60)  # a safety net only: every test releases it
        self.finished.set()


def service(
    *,
    ledger: Any = None,
    replica: Any = None,
    gate: Any = None,
    documents: Any = None,
    budget: float = 1.2,
    cache: float = 5.0,
    clock: Any = None,
    threshold: float = 180.0,
) -> HealthService:
    extra = {} if clock is None else {"clock": clock}
    role_check, checks = health_checks(
        ledger=ledger or Ledger(),
        replica=replica or Replica(),
        gate=gate or Gate(),
        documents=documents or Documents(),
        replica_lag_threshold_seconds=threshold,
    )
    return HealthService(
        role_check=role_check,
        checks=checks,
        budget_seconds=budget,
        check_timeout_seconds=budget,
        cache_seconds=cache,
        **extra,
    )


def by_name(report: HealthReport) -> dict[str, Any]:
    return {check.name: check for check in report.checks}


@pytest.fixture(autouse=True)
def _no_metrics_left_behind() -> Iterator[None]:
    yield
    metrics.clear_metrics()


# -- the public answer --------------------------------------------------------------------------


def test_all_checks_pass_answers_200_healthy() -> None:
    response = respond(load_event(EVENT), None, service=service())

    assert response == {
        "statusCode": 200,
        "headers": {"content-type": "text/plain", "cache-control": "no-store"},
        "body": "HEALTHY",
    }


def test_one_failing_check_answers_503_and_the_body_says_nothing_more(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    failing = Ledger(error=LedgerUnavailable(SECRET_DETAIL))

    response = respond(load_event(EVENT), None, service=service(ledger=failing))

    assert response["statusCode"] == 503
    assert response["body"] == "UNHEALTHY"
    assert set(response) == {"statusCode", "headers", "body"}
    assert SECRET_DETAIL not in json.dumps(response)
    # ...while the logs and the metrics say which check failed, and why.
    [record] = [
        r for r in caplog.records if r.getMessage() == "health checks failed: aurora-writer"
    ]
    assert SECRET_DETAIL in record.__dict__["checks"]["aurora-writer"]["detail"]
    failed = {
        (blob["check"], blob["HealthCheckFailed"][0])
        for blob in _json_lines(capfd.readouterr().out)
        if "HealthCheckFailed" in blob
    }
    assert failed == {("aurora-writer", 1.0), ("dynamodb", 0.0), ("s3", 0.0)}


def test_methods_other_than_get_and_head_run_no_check() -> None:
    event = load_event(EVENT)
    event["requestContext"]["http"]["method"] = "POST"
    ledger = Ledger()

    response = respond(event, None, service=service(ledger=ledger))

    assert response["statusCode"] == 405
    assert ledger.calls == 0


def test_the_sample_event_is_a_function_url_event() -> None:
    event = LambdaFunctionUrlModel.model_validate(load_event(EVENT))
    assert event.requestContext.http.method == "GET"
    assert event.version == "2.0"


# -- the verdict ----------------------------------------------------------------------------------


def test_active_region_needs_a_writable_ledger() -> None:
    report = service(ledger=Ledger(writable=False), gate=Gate(active=True)).check()

    assert not report.healthy
    assert report.role == "active"
    assert by_name(report)[AURORA_WRITER].detail == READ_ONLY_WHILE_ACTIVE


def test_the_active_region_never_asks_its_reader_and_the_passive_one_never_the_writer() -> None:
    ledger, replica = Ledger(), Replica()
    service(ledger=ledger, replica=replica, gate=Gate(active=True)).check()
    assert (ledger.calls, replica.calls) == (1, 0)

    ledger, replica = Ledger(error=LedgerUnavailable("the other region is gone")), Replica()
    report = service(ledger=ledger, replica=replica, gate=Gate(active=False)).check()
    # The writer (the global writer endpoint: the other region) is not this region's business
    # while passive: its own copy is.
    assert (ledger.calls, replica.calls) == (0, 1)
    assert report.healthy and report.role == "passive"
    assert set(by_name(report)) == {"dynamodb", AURORA_REPLICA, "s3"}


def test_passive_region_is_healthy_while_its_copy_is_fresh_enough() -> None:
    assert service(replica=Replica(age=179.0), gate=Gate(active=False)).check().healthy


def test_passive_region_with_a_stale_copy_is_unhealthy_and_says_how_stale() -> None:
    report = service(replica=Replica(age=250.4), gate=Gate(active=False), threshold=180).check()

    assert not report.healthy
    assert by_name(report)[AURORA_REPLICA].detail == "replica copy 250s old (threshold 180s)"


def test_passive_region_without_any_heartbeat_is_unhealthy() -> None:
    report = service(replica=Replica(age=None), gate=Gate(active=False)).check()

    assert not report.healthy
    assert by_name(report)[AURORA_REPLICA].detail == NO_HEARTBEAT


def test_an_unreadable_control_item_is_unhealthy_and_runs_only_role_free_checks() -> None:
    ledger, replica, documents = Ledger(), Replica(), Documents()
    report = service(
        ledger=ledger,
        replica=replica,
        documents=documents,
        gate=Gate(error=RegionStateUnavailable("no item")),
    ).check()

    assert not report.healthy and report.role == "unknown"
    assert (ledger.calls, replica.calls, documents.calls) == (0, 0, 1)


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("dynamodb", {"gate": Gate(error=RegionStateUnavailable("no item"))}),
        ("s3", {"documents": Documents(error=DocumentsUnavailable("answered 404"))}),
        ("aurora-writer", {"ledger": Ledger(error=RuntimeError("a bug in the probe"))}),
    ],
)
def test_any_failing_check_makes_the_region_unhealthy(name: str, broken: dict[str, Any]) -> None:
    report = service(**broken).check()

    assert not report.healthy
    assert [check.name for check in report.failed()] == [name]


def test_a_check_that_hangs_past_the_budget_is_cut_off() -> None:
    documents = HangingDocuments()
    try:
        response = respond(
            load_event(EVENT), None, service=service(documents=documents, budget=0.2)
        )
        hang_ended_first = documents.finished.is_set()
    finally:
        documents.release.set()

    assert not hang_ended_first  # the answer did not wait for the hung check
    assert response["statusCode"] == 503
    assert response["body"] == "UNHEALTHY"


def test_a_hung_check_is_reported_by_name() -> None:
    documents = HangingDocuments()
    try:
        report = service(documents=documents, budget=0.2).check()
    finally:
        documents.release.set()

    assert [check.name for check in report.failed()] == ["s3"]
    assert by_name(report)["s3"].detail.startswith("no answer within")
    assert by_name(report)[AURORA_WRITER].ok and by_name(report)["dynamodb"].ok


# -- the cache ------------------------------------------------------------------------------------


def test_a_second_call_within_the_ttl_runs_no_check() -> None:
    now = [100.0]
    ledger, gate, documents = Ledger(), Gate(), Documents()
    health = service(ledger=ledger, gate=gate, documents=documents, cache=5.0, clock=lambda: now[0])

    first = health.check()
    now[0] += 4.9
    second = health.check()

    assert (ledger.calls, gate.calls, documents.calls) == (1, 1, 1)
    assert first.fresh and not second.fresh
    assert second.healthy == first.healthy

    now[0] += 0.2  # past the TTL: checked again
    assert health.check().fresh
    assert (ledger.calls, gate.calls, documents.calls) == (2, 2, 2)


def test_a_cached_answer_is_not_counted_again(capfd: pytest.CaptureFixture[str]) -> None:
    health = service()
    respond(load_event(EVENT), None, service=health)
    capfd.readouterr()

    respond(load_event(EVENT), None, service=health)

    assert "HealthCheckFailed" not in capfd.readouterr().out


# -- settings -------------------------------------------------------------------------------------


def test_budget_must_stay_under_route53s_two_seconds() -> None:
    env = {
        "ENVIRONMENT": "dev",
        "REGION_ROLE": "primary",
        "AWS_REGION": "us-east-1",
        "REGION_CONTROL_TABLE": "dr-payment-region-control-dev",
        "DOCS_BUCKET": "dr-payment-docs-primary-dev-123456789012",
        "DB_HOST": "writer.example",
        "DB_READER_HOST": "reader.example",
        "DB_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app",
    }
    assert config.load(HealthSettings, env).budget_seconds == 1.2
    assert (
        config.load(HealthSettings, {**env, "HEALTH_BUDGET_SECONDS": "1.5"}).budget_seconds == 1.5
    )
    with pytest.raises(config.SettingsError, match="HEALTH_BUDGET_SECONDS"):
        config.load(HealthSettings, {**env, "HEALTH_BUDGET_SECONDS": "2"})
    with pytest.raises(config.SettingsError, match="DB_HOST"):
        config.load(HealthSettings, {k: v for k, v in env.items() if k != "DB_HOST"})


def test_the_own_reader_is_a_host_on_the_clusters_port_or_a_host_and_port() -> None:
    """In AWS every cluster listens on DB_PORT; the sandbox's servers share a host, not a port."""
    env = {
        "ENVIRONMENT": "dev",
        "REGION_ROLE": "secondary",
        "AWS_REGION": "us-west-2",
        "REGION_CONTROL_TABLE": "dr-payment-region-control-dev",
        "DOCS_BUCKET": "dr-payment-docs-secondary-dev-123456789012",
        "DB_HOST": "writer.example",
        "DB_PORT": "3306",
        "DB_READER_HOST": "reader.example",
        "DB_SECRET_ID": "arn:aws:secretsmanager:us-west-2:123456789012:secret:app",
    }
    assert config.load(HealthSettings, env).own_reader() == ("reader.example", 3306)
    sandbox = {**env, "DB_READER_HOST": "127.0.0.1:54291"}
    assert config.load(HealthSettings, sandbox).own_reader() == ("127.0.0.1", 54291)


def test_the_template_gives_the_function_every_setting_it_requires() -> None:
    from ops.sandbox import functions

    declared = set(functions.function("HealthFunction").declared_environment())
    required = config.environment_names(HealthSettings, required_only=True)
    assert {"DOCS_BUCKET", "DB_READER_HOST"} <= required
    assert required - {"AWS_REGION"} <= declared  # Lambda itself sets AWS_REGION


def _json_lines(text: str) -> list[dict[str, Any]]:
    blobs = []
    for line in text.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict):
            blobs.append(blob)
    return blobs
