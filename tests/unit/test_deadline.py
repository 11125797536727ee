"""The deadline stops AWS SDK retries before Lambda's timeout, and leaves other errors alone."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from shared import deadline
from shared.errors import DeadlineExceeded


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _throttling_client(calls: list[int], attempts: int = 10) -> Any:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )

    def throttle(request: Any, **_: Any) -> AWSResponse:
        calls.append(1)
        body = b'{"__type":"ProvisionedThroughputExceededException","message":"slow down"}'
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "r"}, _Raw(body))

    client.meta.events.register("before-send", throttle)
    return deadline.install(client)


def test_retries_stop_when_the_next_backoff_would_pass_the_deadline() -> None:
    calls: list[int] = []
    client = _throttling_client(calls)
    with deadline.Deadline(1.5, margin=0.5).active(), pytest.raises(DeadlineExceeded):
        client.get_item(TableName="t", Key={"k": {"S": "v"}})
    assert 1 <= len(calls) < 10


def test_without_a_deadline_botocore_decides() -> None:
    calls: list[int] = []
    client = _throttling_client(calls, attempts=2)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.get_item(TableName="t", Key={"k": {"S": "v"}})
    assert len(calls) == 2


def test_expired_deadline_refuses_the_first_request() -> None:
    calls: list[int] = []
    client = _throttling_client(calls)
    with deadline.Deadline(0.0, margin=0.5).active(), pytest.raises(DeadlineExceeded):
        client.get_item(TableName="t", Key={"k": {"S": "v"}})
    assert calls == []


def test_from_context_uses_remaining_time() -> None:
    class Ctx:
        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    d = deadline.Deadline.from_context(Ctx(), margin=2.0)
    assert 7.5 < d.remaining() <= 8.0


def test_an_empty_endpoint_override_means_the_regional_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # template.yaml declares AWS_ENDPOINT_URL="" so `sam local invoke` can override it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    client = boto3.client("dynamodb", region_name="us-west-2")
    assert client.meta.endpoint_url == "https://dynamodb.us-west-2.amazonaws.com"


def test_remaining_time_follows_the_clock_given() -> None:
    now = [50.0]
    d = deadline.Deadline(10.0, margin=2.0, clock=lambda: now[0])
    assert d.remaining() == 8.0
    now[0] += 7.5
    assert d.remaining() == 0.5
    d.check(needed=0.5)
    with pytest.raises(DeadlineExceeded):
        d.check(needed=0.6)
