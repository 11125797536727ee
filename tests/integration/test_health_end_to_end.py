"""The real HealthFunction handler against moto and MariaDB: what Route 53 would be told."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from health.checks import READ_ONLY_WHILE_ACTIVE
from health.handler import lambda_handler
from tests.conftest import PRIMARY, Sandbox, load_event

pytestmark = pytest.mark.integration

DOCS_BUCKET = "dr-payment-docs-primary-test-123456789012"


@pytest.fixture
def health(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox plus what only HealthFunction needs: the documents bucket and its settings."""
    import boto3

    boto3.client("s3", region_name=PRIMARY).create_bucket(Bucket=DOCS_BUCKET)
    for key, value in {
        "DOCS_BUCKET": DOCS_BUCKET,
        # One server stands for the writer and this region's reader here.
        "DB_READER_HOST": "127.0.0.1",
        "HEALTH_CACHE_SECONDS": "0",  # every call checks again
        # The verdict is under test here, not the speed: the most the settings allow, so a busy
        # shared machine cannot turn a slow answer into a false UNHEALTHY.
        "HEALTH_BUDGET_SECONDS": "1.9",
        "HEALTH_CHECK_TIMEOUT_SECONDS": "1.9",
        "POWERTOOLS_SERVICE_NAME": "health",
    }.items():
        monkeypatch.setenv(key, value)
    yield sandbox  # tests/conftest.py clears the settings and service caches around each test


def probe(context: Any) -> dict[str, Any]:
    return lambda_handler(load_event("health_function_url.json"), context)


def test_healthy_region_answers_200(health: Sandbox, lambda_context: Any) -> None:
    response = probe(lambda_context)

    assert (response["statusCode"], response["body"]) == (200, "HEALTHY")


def test_read_only_ledger_while_active_answers_503(
    health: Sandbox, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    health.mariadb.set_read_only(True)

    response = probe(lambda_context)

    assert (response["statusCode"], response["body"]) == (503, "UNHEALTHY")
    [record] = [r for r in caplog.records if r.getMessage().startswith("health checks failed")]
    assert record.__dict__["checks"]["aurora-writer"]["detail"] == READ_ONLY_WHILE_ACTIVE
    assert record.__dict__["role"] == "active"


def test_passive_region_with_read_only_ledger_answers_200(
    health: Sandbox, lambda_context: Any
) -> None:
    health.set_active_region("us-west-2")
    health.mariadb.set_read_only(True)
    # The active region's replication monitor wrote a heartbeat a moment ago.
    with health.mariadb.root("payments") as conn, conn.cursor() as cur:
        cur.execute(
            "REPLACE INTO replication_heartbeat VALUES ('us-west-2', REPEAT('0', 32), "
            "UTC_TIMESTAMP(6))"
        )

    response = probe(lambda_context)

    assert (response["statusCode"], response["body"]) == (200, "HEALTHY")


def test_missing_documents_bucket_answers_503(health: Sandbox, lambda_context: Any) -> None:
    import boto3

    boto3.client("s3", region_name=PRIMARY).delete_bucket(Bucket=DOCS_BUCKET)

    response = probe(lambda_context)

    assert (response["statusCode"], response["body"]) == (503, "UNHEALTHY")


def test_the_same_function_answers_again_once_the_ledger_is_writable(
    health: Sandbox, lambda_context: Any
) -> None:
    health.mariadb.set_read_only(True)
    assert probe(lambda_context)["statusCode"] == 503

    health.mariadb.set_read_only(False)

    assert probe(lambda_context)["statusCode"] == 200
