"""Both regions for the health function and the replication monitor: moto (in-process) with each
region's tables, documents bucket and secret, the region-control item in both replicas, and each
region's function environment pointing at its own MariaDB server of a replica pair (as the
sandbox does: us-west-2's DB_HOST is its read-only replica), the peer's reader as host:port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from ops.sandbox import resources
from ops.sandbox.resources import REGIONS
from shared import names
from tests.conftest import APP_PASSWORD, APP_USER, ENV, LambdaContextStub

ACCOUNT = "123456789012"
HEALTH_EVENT = "health_function_url.json"
SCHEDULE_EVENT = "replication_monitor_schedule.json"


def docs_bucket(role: str) -> str:
    return names.documents_bucket(role, ENV, ACCOUNT)


@dataclass
class TwoRegions:
    pair: Any  # ops.sandbox.replication.Topology
    secrets: dict[str, str]  # region -> app secret ARN
    monkeypatch: pytest.MonkeyPatch
    settings: dict[str, str]

    def env(self, role: str) -> dict[str, str]:
        region = REGIONS[role]
        peer_role = names.peer_role(role)
        peer = REGIONS[peer_role]
        return {
            "ENVIRONMENT": ENV,
            "REGION_ROLE": role,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "REGION_CONTROL_TABLE": names.region_control_table(ENV),
            "SESSIONS_TABLE": names.sessions_table(ENV),
            "DOCS_BUCKET": docs_bucket(role),
            "PEER_DOCS_BUCKET": docs_bucket(peer_role),
            "PEER_REGION": peer,
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.pair.servers[region].port),
            "DB_READER_HOST": "127.0.0.1",
            "DB_PEER_READER_ENDPOINT": f"127.0.0.1:{self.pair.servers[peer].port}",
            "DB_NAME": "payments",
            "DB_SECRET_ID": self.secrets[region],
            "DB_TLS": "false",
            **self.settings,
        }

    @contextmanager
    def region(self, role: str, **overrides: str) -> Iterator[None]:
        """The functions of `role`'s region (fresh settings and wiring, as a new environment)."""
        from health import wiring as health_wiring
        from replication_monitor import wiring as monitor_wiring
        from shared import config

        caches = (
            config.get_health_settings,
            config.get_monitor_settings,
            health_wiring.get_service,
            monitor_wiring.get_monitor,
        )
        with self.monkeypatch.context() as patch:
            for key, value in {**self.env(role), **overrides}.items():
                patch.setenv(key, value)
            for cache in caches:
                cache.cache_clear()
            try:
                yield
            finally:
                for cache in caches:
                    cache.cache_clear()

    def monitor(self, role: str = "primary", **overrides: str) -> dict[str, Any]:
        from replication_monitor.handler import lambda_handler
        from tests.conftest import load_event

        with self.region(role, **overrides):
            return dict(lambda_handler(load_event(SCHEDULE_EVENT), LambdaContextStub(55_000)))

    def health(self, role: str, **overrides: str) -> dict[str, Any]:
        from health.handler import lambda_handler
        from tests.conftest import load_event

        with self.region(role, **overrides):
            return dict(lambda_handler(load_event(HEALTH_EVENT), LambdaContextStub(5_000)))


@contextmanager
def two_regions(pair: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoRegions]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        secrets = {}
        for role, region in REGIONS.items():
            dynamodb = boto3.client("dynamodb", region_name=region)
            resources.create_tables(dynamodb, ENV)
            # Global-table emulation (harness): the item is written in each region's replica.
            resources.seed_active_region(dynamodb, ENV, REGIONS["primary"])
            s3 = boto3.client("s3", region_name=region)
            location = {} if region == "us-east-1" else {"LocationConstraint": region}
            s3.create_bucket(
                Bucket=docs_bucket(role),
                **({"CreateBucketConfiguration": location} if location else {}),
            )
            secrets[region] = resources.create_app_secret(
                boto3.client("secretsmanager", region_name=region), ENV, APP_USER, APP_PASSWORD
            )
        settings = {
            "HEALTH_CACHE_SECONDS": "0",
            # The verdict is under test, not the speed: the most the settings allow, so a busy
            # shared machine cannot turn a slow answer into a false UNHEALTHY.
            "HEALTH_BUDGET_SECONDS": "1.9",
            "HEALTH_CHECK_TIMEOUT_SECONDS": "1.9",
            "POWERTOOLS_SERVICE_NAME": "replication-monitor",
        }
        yield TwoRegions(pair, secrets, monkeypatch, settings)


def figures(answer: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The monitor's answer by (metric, store or region), published and missing alike."""
    return {
        (f["metric"], f.get("store") or f.get("region") or f.get("target_region")): f
        for f in [*answer["published"], *answer["missing"]]
    }


def emf_blobs(text: str) -> list[dict[str, Any]]:
    blobs = []
    for line in text.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            blobs.append(blob)
    return blobs
