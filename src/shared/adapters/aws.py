"""boto3 clients with the retry and timeout policy the write path relies on."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from shared import deadline

# Standard mode: exponential backoff with jitter and a retry quota. Attempts are generous
# because the deadline hook, not the attempt count, is what stops retries before Lambda's timeout.
WRITE_PATH_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 8},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


def client(service: str, region: str, *, config: Config = WRITE_PATH_CONFIG) -> Any:
    """A client that honours the active Deadline on every request and retry. AWS_ENDPOINT_URL
    (the local sandbox) is honoured by boto3 itself."""
    session: Any = boto3.session.Session()  # Any: the stubs' overloads want a literal name
    return deadline.install(session.client(service, region_name=region, config=config))


def probe_config(timeout_seconds: float) -> Config:
    """For health probes: short timeouts and a single retry. The caller's own timeout is what
    bounds a probe; these only keep an abandoned call from lingering in the background."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
    )
