"""botocore Stubber behind the client factory, for the calls moto lacks or mishandles."""

from __future__ import annotations

import io
from typing import Any

import boto3
from botocore.stub import Stubber

from ops.drctl.aws import ClientFactory
from ops.drctl.console import Console
from ops.drctl.context import Context


class StubbedFactory(ClientFactory):
    """Clients with an active Stubber each; `order` lists every call, across clients."""

    def __init__(self) -> None:
        super().__init__()
        self.stubbers: dict[tuple[str, str], Stubber] = {}
        self.stubbed: dict[tuple[str, str], Any] = {}
        self.order: list[tuple[str, str]] = []

    def client(
        self, service: str, region: str, *, bounded: bool = False, long_call: bool = False
    ) -> Any:
        key = (service, region)  # bounded, long or not, one stubbed client
        if key not in self.stubbers:
            made = boto3.client(service, region_name=region)
            made.meta.events.register(
                "before-parameter-build",
                lambda model, **_: self.order.append((region, model.name)),
            )
            stubber = Stubber(made)
            stubber.activate()
            self.stubbers[key] = stubber
            self.stubbed[key] = made
        return self.stubbed[key]

    def stub(self, service: str, region: str) -> Stubber:
        self.client(service, region)
        return self.stubbers[(service, region)]

    def assert_no_pending(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


class Clock:
    """10 s per reading: elapsed times in the output are predictable."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10
        return self.now


def stubbed_context(env: str = "dev") -> tuple[Context, StubbedFactory, io.StringIO]:
    factory = StubbedFactory()
    err = io.StringIO()
    console = Console(out=io.StringIO(), err=err, clock=Clock())
    return Context(env=env, aws=factory, console=console, sleep=lambda _: None), factory, err
