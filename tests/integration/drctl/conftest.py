"""drctl against moto in-process: a fixture project, a call recorder on every client the
factory makes (botocore event hooks), a recording fake for `sam deploy`, and the two
emulations moto needs for Aurora Global (clearly test-only)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from ops.drctl.aws import ClientFactory
from ops.drctl.cli import Seams, main
from ops.drctl.console import Console
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, write_project

READ_PREFIXES = ("Describe", "List", "Get", "Head")


@dataclass(frozen=True)
class Call:
    service: str
    region: str
    operation: str
    params: dict[str, Any]

    @property
    def is_write(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


class Recorder:
    """Every AWS operation, in order, with its API parameters (before-call hooks)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def hook(self, client: Any, service: str, region: str) -> None:
        client.meta.events.register("before-parameter-build", self._keep_params)
        client.meta.events.register("before-call", partial(self._record, service, region))

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["drctl_test_params"] = dict(params)

    def _record(
        self, service: str, region: str, model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        self.calls.append(Call(service, region, model.name, context.get("drctl_test_params", {})))

    def writes(self) -> list[Call]:
        return [call for call in self.calls if call.is_write]

    def count(self, operation: str) -> int:
        return sum(call.operation == operation for call in self.calls)

    def clear(self) -> None:
        self.calls.clear()


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://emulated", 200, {}, None), parsed


def emulate_aurora_global(client: Any, service: str, region: str) -> None:
    """moto 5.2 answers RemoveFromGlobalCluster for a member in another region with 200 and
    does nothing, and has no ModifyGlobalCluster: do what AWS does, on moto's backends."""
    if service != "rds":
        return
    from moto.rds.models import rds_backends

    def find_global(identifier: str) -> Any:
        for backend in rds_backends[ACCOUNT].values():
            if identifier in backend.global_clusters:
                return backend.global_clusters[identifier]
        raise AssertionError(f"no global cluster {identifier}")

    def remove(context: dict[str, Any], **_: Any) -> Any:
        params = context["drctl_test_params"]
        arn = params["DbClusterIdentifier"]
        member_region, identifier = arn.split(":")[3], arn.split(":")[-1]
        cluster = rds_backends[ACCOUNT][member_region].clusters[identifier]
        find_global(params["GlobalClusterIdentifier"]).members.remove(cluster)
        cluster.global_cluster_identifier = None
        return _ok(
            {"GlobalCluster": {"GlobalClusterIdentifier": params["GlobalClusterIdentifier"]}}
        )

    def modify(context: dict[str, Any], **_: Any) -> Any:
        params = context["drctl_test_params"]
        find_global(params["GlobalClusterIdentifier"]).deletion_protection = params[
            "DeletionProtection"
        ]
        return _ok(
            {"GlobalCluster": {"GlobalClusterIdentifier": params["GlobalClusterIdentifier"]}}
        )

    emulated = {"RemoveFromGlobalCluster": remove, "ModifyGlobalCluster": modify}

    def dispatch(model: Any, context: dict[str, Any], **_: Any) -> Any:
        handler = emulated.get(model.name)
        return handler(context) if handler else None

    # On the generic event, after the recorder (a more specific event name would run first
    # and hide the call from it).
    client.meta.events.register("before-call", dispatch)


def emulate_change_set_outputs(client: Any, service: str, region: str) -> None:
    """moto 5.2 executes a change set but leaves the stack without Outputs and with its old
    Parameters (only CreateStack/UpdateStack refresh them): refresh them as AWS does."""
    if service != "cloudformation":
        return
    from moto.cloudformation.models import cloudformation_backends

    def refresh(context: dict[str, Any], **_: Any) -> None:
        backend = cloudformation_backends[ACCOUNT][region]
        change_set = backend.describe_change_set(context["drctl_test_params"]["ChangeSetName"])
        stack = change_set.stack
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = change_set.parameters
        stack.output_map = stack._create_output_map()

    client.meta.events.register("after-call.cloudformation.ExecuteChangeSet", refresh)


@dataclass
class FakeSam:
    """Stands in for `sam deploy`: records the command (also in the recorder's sequence, as
    service "sam"), answers with `code`."""

    recorder: Recorder
    code: int = 0
    commands: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], cwd: Path) -> int:
        self.commands.append(list(argv))
        region = argv[argv.index("--region") + 1]
        stack = argv[argv.index("--stack-name") + 1]
        self.recorder.calls.append(Call("sam", region, "deploy", {"StackName": stack}))
        return self.code


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Harness:
    root: Path
    plan: Path
    recorder: Recorder
    sam: FakeSam
    factory: ClientFactory
    answers: list[str] = field(default_factory=list)

    def drctl(self, *argv: str, env: str = ENV) -> Result:
        out, err = io.StringIO(), io.StringIO()
        seams = Seams(
            factory=self.factory,
            runner=self.sam,
            sleep=lambda _seconds: None,
            ask=self._ask,
            console=Console(out=out, err=err),
        )
        code = main([*argv, "--env", env, "--plan", str(self.plan)], seams)
        return Result(code, out.getvalue(), err.getvalue())

    def add_hook(self, hook: Callable[[Any, str, str], None]) -> None:
        """A further client hook: clients are made again, with it."""
        self.factory = ClientFactory(hooks=[*default_hooks(self.recorder), hook])

    def _ask(self, prompt: str) -> str:
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def client(self, service: str, region: str = PRIMARY) -> Any:
        """A client outside the recorder, for setting up and checking."""
        return boto3.client(service, region_name=region)


def default_hooks(recorder: Recorder) -> list[Callable[[Any, str, str], None]]:
    return [recorder.hook, emulate_aurora_global, emulate_change_set_outputs]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    plan = write_project(tmp_path)
    recorder = Recorder()
    with mock_aws():
        factory = ClientFactory(hooks=default_hooks(recorder))
        yield Harness(tmp_path, plan, recorder, FakeSam(recorder), factory)


@pytest.fixture
def world(harness: Harness, ledger_db: Any) -> Any:
    """Two deployed regions for the DR procedures (tests/integration/drctl/world.py)."""
    from tests.integration.drctl.world import build

    return build(harness, ledger_db)
