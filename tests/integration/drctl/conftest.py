"""drctl against moto in-process: a fixture project, a call recorder on every client the
factory makes (botocore event hooks), a recording fake for `sam deploy`, and the two
emulations moto needs for Aurora Global (clearly test-only)."""

from __future__ import annotations

import io
import json
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


def _global_clusters_of(template_body: str, parameters: dict[str, str]) -> list[dict[str, Any]]:
    """(logical id, identifier, properties) of the AWS::RDS::GlobalCluster resources, with
    ${Param} substituted (the fixture templates use nothing else)."""
    from ops.drctl.template import parse_template

    found = []
    for logical_id, resource in (parse_template(template_body).get("Resources") or {}).items():
        if resource.get("Type") != "AWS::RDS::GlobalCluster":
            continue
        props = dict(resource.get("Properties") or {})
        for key, value in props.items():
            if isinstance(value, dict) and "Fn::Sub" in value:
                text = value["Fn::Sub"]
                for name, given in parameters.items():
                    text = text.replace("${" + name + "}", given)
                props[key] = text
            elif isinstance(value, dict) and "Ref" in value:
                props[key] = parameters.get(value["Ref"], "")
        found.append({"LogicalResourceId": logical_id, **props})
    return found


def emulate_global_cluster_resource(client: Any, service: str, region: str) -> None:
    """moto 5.2's CloudFormation skips AWS::RDS::GlobalCluster (the stack still completes): make
    it on RDS when the change set runs, and list it among the stack's resources, as AWS does."""
    if service != "cloudformation":
        return
    from moto.cloudformation.models import cloudformation_backends

    def stack_of(name: str) -> Any:
        backend = cloudformation_backends[ACCOUNT][region]
        return next((s for s in backend.stacks.values() if name in (s.name, s.stack_id)), None)

    def create(context: dict[str, Any], **_: Any) -> None:
        stack = stack_of(context["drctl_test_params"]["StackName"])
        rds = boto3.client("rds", region_name=region)
        for found in _global_clusters_of(stack.template, dict(stack.parameters)):
            identifier = found["GlobalClusterIdentifier"]
            if rds.describe_global_clusters()["GlobalClusters"]:
                continue  # one per environment; a re-run updates nothing here
            rds.create_global_cluster(
                GlobalClusterIdentifier=identifier,
                Engine=found.get("Engine", "aurora-mysql"),
                EngineVersion=found.get("EngineVersion") or "8.0.mysql_aurora.3.10.0",
                DeletionProtection=bool(found.get("DeletionProtection", False)),
            )

    def listed(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        stack = stack_of(context["drctl_test_params"]["StackName"])
        if stack is None or not parsed.get("StackResourceSummaries"):
            return
        existing = {
            g["GlobalClusterIdentifier"]
            for g in boto3.client("rds", region_name=region).describe_global_clusters()[
                "GlobalClusters"
            ]
        }
        summaries = parsed["StackResourceSummaries"]
        for found in _global_clusters_of(stack.template, dict(stack.parameters)):
            if found["GlobalClusterIdentifier"] in existing:
                summaries.append(
                    {
                        "LogicalResourceId": found["LogicalResourceId"],
                        "PhysicalResourceId": found["GlobalClusterIdentifier"],
                        "ResourceType": "AWS::RDS::GlobalCluster",
                        "ResourceStatus": "CREATE_COMPLETE",
                    }
                )

    client.meta.events.register("after-call.cloudformation.ExecuteChangeSet", create)
    client.meta.events.register("after-call.cloudformation.ListStackResources", listed)


DEFAULT_LAMBDA_QUOTA = 1000  # AWS's default Concurrent executions per region


def emulate_lambda_account_settings(quota: dict[str, int]) -> Callable[[Any, str, str], None]:
    """moto 5.2 has no GetAccountSettings (404 "Not yet implemented"): answer it as AWS does,
    from a per-region quota the test sets (default 1,000) and the reservations of the
    functions moto holds."""

    def hook(client: Any, service: str, region: str) -> None:
        if service != "lambda":
            return
        from moto.awslambda.models import lambda_backends

        def answer(model: Any, **_: Any) -> Any:
            if model.name != "GetAccountSettings":
                return None
            limit = quota.get(region, DEFAULT_LAMBDA_QUOTA)
            functions = lambda_backends[ACCOUNT][region].list_functions()
            reserved = sum(int(fn.reserved_concurrency or 0) for fn in functions)
            return _ok(
                {
                    "AccountLimit": {
                        "ConcurrentExecutions": limit,
                        "UnreservedConcurrentExecutions": limit - reserved,
                    },
                    "AccountUsage": {"FunctionCount": len(functions)},
                }
            )

        client.meta.events.register("before-call", answer)

    return hook


SCHEMA_FUNCTION_PREFIX = "dr-payment-schema-migration-"
UP_TO_DATE = {
    "ok": True,
    "database": "payments",
    "version": 3,
    "applied": [],
    "pending": [],
    "unknown": [],
    "app_user": "payment_app",
    "app_user_created": False,
}


@dataclass
class SchemaFunctions:
    """moto cannot invoke a Lambda function without Docker: SchemaMigrationFunction's Invoke is
    answered here, by `handler(region, event)` (a test sets the real handler, in-process, or its
    own answer; an exception becomes Lambda's FunctionError) or an up-to-date answer, and each
    call is recorded. `absent` leaves the call to moto, which has no such function."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # region, function, event
    handler: Callable[[str, Any], Any] | None = None
    absent: bool = False

    def hook(self, client: Any, service: str, region: str) -> None:
        if service != "lambda":
            return

        def answer(model: Any, context: dict[str, Any], **_: Any) -> Any:
            if model.name != "Invoke" or self.absent:
                return None
            params = context["drctl_test_params"]
            if not str(params["FunctionName"]).startswith(SCHEMA_FUNCTION_PREFIX):
                return None
            event = json.loads(params["Payload"])
            self.calls.append((region, params["FunctionName"], event))
            reply: dict[str, Any] = {"StatusCode": 200}
            try:
                payload = (
                    self.handler(region, event)
                    if self.handler
                    else {**UP_TO_DATE, "action": event.get("action")}
                )
            except Exception as exc:  # noqa: BLE001 - what Lambda reports as a function error
                reply["FunctionError"] = "Unhandled"
                payload = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            reply["Payload"] = io.BytesIO(json.dumps(payload).encode())
            return _ok(reply)

        client.meta.events.register("before-call", answer)


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
    lambda_quota: dict[str, int] = field(default_factory=dict)  # region -> ConcurrentExecutions
    schema: SchemaFunctions = field(default_factory=SchemaFunctions)

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
        self.factory = ClientFactory(
            hooks=[*default_hooks(self.recorder, self.lambda_quota, self.schema), hook]
        )

    def _ask(self, prompt: str) -> str:
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def client(self, service: str, region: str = PRIMARY) -> Any:
        """A client outside the recorder, for setting up and checking."""
        return boto3.client(service, region_name=region)


def default_hooks(
    recorder: Recorder, lambda_quota: dict[str, int], schema: SchemaFunctions
) -> list[Callable[[Any, str, str], None]]:
    return [
        recorder.hook,
        emulate_lambda_account_settings(lambda_quota),
        schema.hook,
        emulate_aurora_global,
        emulate_change_set_outputs,  # before the global cluster emulation: it reads the stack
        emulate_global_cluster_resource,
    ]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    plan = write_project(tmp_path)
    recorder = Recorder()
    quota: dict[str, int] = {}
    schema = SchemaFunctions()
    with mock_aws():
        factory = ClientFactory(hooks=default_hooks(recorder, quota, schema))
        yield Harness(
            tmp_path, plan, recorder, FakeSam(recorder), factory, lambda_quota=quota, schema=schema
        )


@pytest.fixture
def world(harness: Harness, ledger_db: Any) -> Any:
    """Two deployed regions for the DR procedures (tests/integration/drctl/world.py)."""
    from tests.integration.drctl.world import build

    return build(harness, ledger_db)
