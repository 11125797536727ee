"""Session and client factory: one client per (service, region, bounded), built on first use.

Honours AWS_ENDPOINT_URL (passed in by the CLI) so the same code runs against moto server.
Hooks let tests (and a future --trace option) see every client the factory makes, e.g. to
register botocore `before-call` handlers that record the AWS operations in order.

`bounded=True` is for a region that may be down (the failed region in a failover, every region
in `status`): one attempt, short connect and read timeouts, so a dead region costs seconds.
`long_call=True` is for a synchronous invoke that may run for Lambda's 15 minutes (the schema
migration): a read timeout past that, and one attempt (a retry would run it a second time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config

ClientHook = Callable[[Any, str, str], None]  # (client, service, region)

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    user_agent_extra="drctl",
    connect_timeout=10,
    read_timeout=60,
)
# A region that may not answer: one attempt (no retries), a few seconds at most per call.
BOUNDED_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    user_agent_extra="drctl",
    connect_timeout=3,
    read_timeout=5,
)

# A RequestResponse invoke of a function that may run up to Lambda's 900 s limit.
LONG_CALL_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    user_agent_extra="drctl",
    connect_timeout=10,
    read_timeout=960,
    tcp_keepalive=True,
)


class ClientFactory:
    def __init__(
        self,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        hooks: Sequence[ClientHook] = (),
        session: boto3.Session | None = None,
        config: Config = _CONFIG,
    ) -> None:
        """`config` is for clients of the regions that answer (tests shorten its retries)."""
        self._profile = profile
        self._endpoint_url = endpoint_url or None
        self._hooks = list(hooks)
        self._session = session
        self._config = config
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._account: str | None = None

    @property
    def profile(self) -> str | None:
        return self._profile

    def _get_session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(profile_name=self._profile)
        return self._session

    def client(
        self, service: str, region: str, *, bounded: bool = False, long_call: bool = False
    ) -> Any:
        kind = "bounded" if bounded else "long" if long_call else "default"
        key = (service, region, kind)
        if key not in self._clients:
            config = {"bounded": BOUNDED_CONFIG, "long": LONG_CALL_CONFIG}.get(kind, self._config)
            if self._endpoint_url and service == "s3":
                # one local endpoint (moto server): no bucket-name subdomains
                config = config.merge(Config(s3={"addressing_style": "path"}))
            made = self._get_session().client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=self._endpoint_url,
                config=config,
            )
            for hook in self._hooks:
                hook(made, service, region)
            self._clients[key] = made
        return self._clients[key]

    def account_id(self, region: str) -> str:
        if self._account is None:
            identity = self.client("sts", region).get_caller_identity()
            self._account = str(identity["Account"])
        return self._account
