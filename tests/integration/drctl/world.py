"""A deployed two-region environment for the DR procedures, in moto, with the real processor and
ledger export behind Lambda Invoke and a real MariaDB ledger.

moto lacks what these procedures call most; each emulation below is test-only and named after
the AWS behaviour it stands in for (the sandbox of the drill needs the same ones, served over
HTTP):
- DescribeGlobalClusters with the writer flag of a cluster that founded the global cluster (moto
  leaves it unset), and CreateGlobalCluster from a cluster outside us-east-1 (moto keeps global
  clusters in its us-east-1 backend and looks for the source cluster only there);
- SwitchoverGlobalCluster and FailoverGlobalCluster (500 NotImplemented in moto): the target
  becomes the writer; FailoverGlobalCluster can be told to refuse;
- StopReplicationToReplica (NotImplemented): the replica becomes a standalone secret;
- RotateSecret with a rotation function (moto invokes the function, which needs Docker): the
  secret's rotation is turned on with that function and schedule, nothing else;
- Lambda Invoke (moto needs Docker): dispatched to the real handlers, in-process;
- a dead region: every request to it fails to connect (ConnectTimeoutError) at the HTTP layer,
  below botocore's retries, and each attempt is counted.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError

from ops.sandbox import resources
from shared import names, region_control
from tests.conftest import (
    APP_PASSWORD,
    APP_USER,
    MASTER_PASSWORD,
    MASTER_USER,
    ROOT,
    LambdaContextStub,
)
from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, SECONDARY

E, W = PRIMARY, SECONDARY
ROLES = {"primary": E, "secondary": W}
ROLE_OF = {E: "primary", W: "secondary"}
GLOBAL = names.global_cluster(ENV)
START_EPOCH = 7

Handler = Callable[[Any], Any]


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://emulated", 200, {}, None), parsed


def _fault(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    return AWSResponse("https://emulated", status, {}, None), parsed


@dataclass
class World:
    h: Harness
    ledger: Any  # the MariaDB server (tests.conftest ledger_db)
    dead: set[str] = field(default_factory=set)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (region, op) to dead
    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)  # (region, function)
    invoked: list[tuple[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # what the handlers raised
    refuse_failover: str | None = None  # an error code FailoverGlobalCluster answers with
    queue_urls: dict[str, dict[str, str]] = field(default_factory=dict)  # region -> purpose -> url

    # -- the emulations, installed on every client drctl's factory makes ----------------------

    def hook(self, client: Any, service: str, region: str) -> None:
        client.meta.events.register("before-call", self._before_call(service, region))
        client.meta.events.register_first("before-send", self._before_send(region))

    def _before_send(self, region: str) -> Callable[..., Any]:
        def handler(request: Any, event_name: str, **_: Any) -> Any:
            operation = event_name.split(".")[-1]
            if region in self.dead:
                self.attempts[(region, operation)] += 1
                raise ConnectTimeoutError(endpoint_url=request.url)
            return None

        return handler

    def _before_call(self, service: str, region: str) -> Callable[..., Any]:
        emulated: dict[str, Callable[[dict[str, Any]], Any]] = {
            "DescribeGlobalClusters": self._describe_global,
            "CreateGlobalCluster": self._create_global,
            "SwitchoverGlobalCluster": self._switchover,
            "FailoverGlobalCluster": self._failover,
            "StopReplicationToReplica": partial_region(self._stop_replication, region),
            "RotateSecret": partial_region(self._rotate, region),
            "Invoke": partial_region(self._invoke, region),
        }

        def handler(model: Any, context: dict[str, Any], **_: Any) -> Any:
            if region in self.dead or model.name not in emulated:
                return None  # a dead region fails at the HTTP layer, below the retries
            return emulated[model.name](context["drctl_test_params"])

        return handler

    # -- RDS global cluster --------------------------------------------------------------------

    @staticmethod
    def _global_cluster(identifier: str) -> Any:
        from moto.rds.models import rds_backends

        for backend in rds_backends[ACCOUNT].values():
            if identifier in backend.global_clusters:
                return backend.global_clusters[identifier]
        return None

    def _describe_global(self, params: dict[str, Any]) -> Any:
        identifier = params.get("GlobalClusterIdentifier", GLOBAL)
        found = self._global_cluster(identifier)
        if found is None:
            return _fault(404, "GlobalClusterNotFoundFault", f"{identifier} not found")
        members = list(found.members)
        writers = [m for m in members if m.is_writer] or members[:1]
        return _ok(
            {
                "GlobalClusters": [
                    {
                        "GlobalClusterIdentifier": identifier,
                        "Status": "available",
                        "Endpoint": found.endpoint,
                        "DeletionProtection": bool(found.deletion_protection),
                        "GlobalClusterMembers": [
                            {"DBClusterArn": m.db_cluster_arn, "IsWriter": m in writers}
                            for m in members
                        ],
                    }
                ]
            }
        )

    def _create_global(self, params: dict[str, Any]) -> Any:
        from moto.rds.models import rds_backends

        source_arn = params.get("SourceDBClusterIdentifier")
        if source_arn is None:
            return None  # moto does this one
        region, identifier = source_arn.split(":")[3], source_arn.split(":")[-1]
        source = rds_backends[ACCOUNT][region].clusters[identifier]
        made = rds_backends[ACCOUNT]["us-east-1"].create_global_cluster(
            global_cluster_identifier=params["GlobalClusterIdentifier"],
            source_db_cluster_identifier=None,
            engine=source.engine,
            engine_version=source.engine_version,
            storage_encrypted=None,
            deletion_protection=params.get("DeletionProtection"),
        )
        made.members.append(source)
        source.global_cluster_identifier = made.global_cluster_arn
        source.is_writer = True
        return _ok({"GlobalCluster": {"GlobalClusterIdentifier": made.global_cluster_identifier}})

    def _make_writer(self, identifier: str, target_arn: str) -> None:
        found = self._global_cluster(identifier)
        for member in found.members:
            member.is_writer = member.db_cluster_arn == target_arn

    def _switchover(self, params: dict[str, Any]) -> Any:
        self._make_writer(params["GlobalClusterIdentifier"], params["TargetDbClusterIdentifier"])
        return _ok(
            {"GlobalCluster": {"GlobalClusterIdentifier": params["GlobalClusterIdentifier"]}}
        )

    def _failover(self, params: dict[str, Any]) -> Any:
        if self.refuse_failover:
            return _fault(400, self.refuse_failover, "emulated refusal")
        assert params.get("AllowDataLoss") is True
        self._make_writer(params["GlobalClusterIdentifier"], params["TargetDbClusterIdentifier"])
        return _ok(
            {"GlobalCluster": {"GlobalClusterIdentifier": params["GlobalClusterIdentifier"]}}
        )

    # -- Secrets Manager -----------------------------------------------------------------------

    def _stop_replication(self, region: str, params: dict[str, Any]) -> Any:
        from moto.secretsmanager.models import FakeSecret, ReplicaSecret, secretsmanager_backends

        backend = secretsmanager_backends[ACCOUNT][region]
        replica = backend.secrets[params["SecretId"]]
        if not isinstance(replica, ReplicaSecret):
            return _fault(400, "InvalidRequestException", "not a replica")
        source = replica.source
        standalone = FakeSecret(
            account_id=ACCOUNT,
            region_name=region,
            secret_id=source.name,
            secret_version=dict(source.versions[source.default_version_id]),
            version_id=source.default_version_id,
            secret_string=source.secret_string,
            kms_key_id=source.kms_key_id,
        )
        standalone.arn = replica.arn
        for key in [k for k, v in dict.items(backend.secrets) if v is replica]:
            dict.__delitem__(backend.secrets, key)
        dict.__setitem__(backend.secrets, source.name, standalone)
        source.replicas = [r for r in source.replicas if r.region != region]
        return _ok({"ARN": replica.arn})

    def _rotate(self, region: str, params: dict[str, Any]) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends

        if not params.get("RotationLambdaARN"):
            return None  # moto does this one
        secret = secretsmanager_backends[ACCOUNT][region].secrets[params["SecretId"]]
        set_rotation(secret, params["RotationLambdaARN"], params.get("RotationRules", {}))
        return _ok({"ARN": secret.arn, "Name": secret.name})

    # -- Lambda Invoke: the real handlers, in-process ------------------------------------------

    def _invoke(self, region: str, params: dict[str, Any]) -> Any:
        function, qualifier = params["FunctionName"], params.get("Qualifier")
        self.invoked.append((region, function))
        event = json.loads(params["Payload"])
        answer: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": qualifier or "$LATEST"}
        try:
            payload = self.handlers[(region, function)](event)
        except Exception as exc:  # noqa: BLE001 - what Lambda reports as a function error
            answer["FunctionError"] = "Unhandled"
            payload = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            self.errors.append(payload)
        answer["Payload"] = io.BytesIO(json.dumps(payload).encode())
        return _ok(answer)

    @staticmethod
    def forget_automated_snapshots(region: str) -> None:
        """moto names a cluster's automated snapshot after the minute the cluster was made and
        keeps it after the cluster goes, so a cluster made again under the same name within that
        minute is refused (AWS has no such clash): forget them."""
        from moto.rds.models import rds_backends

        snapshots = rds_backends[ACCOUNT][region].cluster_snapshots
        for name in [name for name in snapshots if name.startswith("rds:")]:
            del snapshots[name]

    # -- state, for the tests --------------------------------------------------------------------

    def kill(self, region: str) -> None:
        self.dead.add(region)

    def control(self, region: str) -> region_control.RegionControl | None:
        item = (
            self.h.client("dynamodb", region)
            .get_item(
                TableName=names.region_control_table(ENV),
                Key=region_control.key(),
                ConsistentRead=True,
            )
            .get("Item")
        )
        return region_control.from_item(item)

    def writer_region(self) -> str | None:
        found = self._global_cluster(GLOBAL)
        writers = [m for m in found.members if m.is_writer] if found else []
        return writers[0].db_cluster_arn.split(":")[3] if writers else None

    def send_to_standby(self, region: str, event: dict[str, Any]) -> None:
        """What a passive processor does with an event it receives (shared/parked.py format)."""
        from shared import parked

        body = parked.message(
            event,
            outcome="PARKED",
            code="REGION_PASSIVE",
            reason="test",
            parked_at="2026-11-30T00:00:00+00:00",
            region=region,
        )
        self.h.client("sqs", region).send_message(
            QueueUrl=self.queue_urls[region]["standby"], MessageBody=json.dumps(body)
        )

    def depth(self, region: str, purpose: str) -> int:
        attributes = self.h.client("sqs", region).get_queue_attributes(
            QueueUrl=self.queue_urls[region][purpose],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def ledger_ids(self) -> set[str]:
        with self.ledger.root("payments") as conn, conn.cursor() as cur:
            cur.execute("SELECT payment_id FROM payments")
            return {row[0] for row in cur.fetchall()}

    def session_ids(self, region: str) -> set[str]:
        items = self.h.client("dynamodb", region).scan(TableName=names.sessions_table(ENV))
        return {item["payment_id"]["S"] for item in items["Items"]}


def partial_region(
    handler: Callable[[str, dict[str, Any]], Any], region: str
) -> Callable[[dict[str, Any]], Any]:
    return lambda params: handler(region, params)


def set_rotation(secret: Any, function_arn: str, rules: dict[str, Any]) -> None:
    """Rotation on, as Secrets Manager records it (moto's attributes)."""
    secret.rotation_requested = True
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = function_arn
    secret.auto_rotate_after_days = int(rules.get("AutomaticallyAfterDays", 30))


# The rotation stacks of the real plan, over a template moto can create: the same parameters
# (secret ARNs from this region's SSM parameters, the rest from this region's stacks), recorded
# in an SSM parameter instead of hosted rotation functions (moto has no SecretsManager transform).
ROTATION_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Environment: {Type: String}
  Role: {Type: String}
  MasterSecretArn:
    Type: AWS::SSM::Parameter::Value<String>
  AppSecretArn:
    Type: AWS::SSM::Parameter::Value<String>
  KmsKeyArn: {Type: String}
  ClusterIdentifier: {Type: String}
  SubnetIds: {Type: String}
  SecurityGroupId: {Type: "AWS::EC2::SecurityGroup::Id"}
  RotationSchedule: {Type: String, Default: "cron(0 4 ? * TUE#2 *)"}
Resources:
  RotationInputs:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /it/${Environment}/rotation-${Role}
      Type: String
      Value: !Join
        - " "
        - [!Ref MasterSecretArn, !Ref AppSecretArn, !Ref KmsKeyArn, !Ref ClusterIdentifier,
           !Ref SubnetIds, !Ref SecurityGroupId]
"""


def _add_rotation_stacks(h: Harness) -> None:
    import yaml

    real = yaml.safe_load((ROOT / "infra-global" / "stacks.yaml").read_text())
    plan = yaml.safe_load(h.plan.read_text())
    plan["stacks"] += [s for s in real["stacks"] if s.get("template") == "secrets-rotation.yaml"]
    h.plan.write_text(yaml.safe_dump(plan, sort_keys=False))
    (h.plan.parent / "secrets-rotation.yaml").write_text(ROTATION_TEMPLATE)


# -- building it ----------------------------------------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _processor(world: World, role: str, region: str) -> Handler:
    from payment_processor.handler import process
    from payment_processor.wiring import build_service
    from shared import config

    settings = config.load(
        config.ProcessorSettings,
        {
            "ENVIRONMENT": ENV,
            "REGION_ROLE": role,
            "AWS_REGION": region,
            "REGION_CONTROL_TABLE": names.region_control_table(ENV),
            "SESSIONS_TABLE": names.sessions_table(ENV),
            "STANDBY_QUEUE_URL": world.queue_urls[region]["standby"],
            "REJECTED_QUEUE_URL": world.queue_urls[region]["rejected"],
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(world.ledger.port),
            "DB_NAME": "payments",
            "DB_SECRET_ID": names.app_secret(ENV),
            "DB_TLS": "false",
            "REGION_GATE_CACHE_SECONDS": "0",
        },
    )
    environments = threading.local()  # concurrent invocations, one execution environment each

    def invoke(event: Any) -> Any:
        if not hasattr(environments, "service"):
            environments.service = build_service(settings)
        return process(
            event, LambdaContextStub(), service=environments.service, deadline_margin=2.0
        )

    return invoke


def _export(world: World) -> Handler:
    from ledger_export.handler import respond
    from shared.adapters.ledger_export import MySQLLedgerRows
    from shared.adapters.mysql import MySQLConnector
    from shared.adapters.secrets import SecretCredentials

    connector = MySQLConnector(
        host="127.0.0.1",
        port=world.ledger.port,
        database="payments",
        credentials=SecretCredentials(names.app_secret(ENV)),
        tls=False,
    )
    rows = MySQLLedgerRows(connector)
    return lambda event: respond(event, rows=rows, max_page=2)  # small pages: paging exercised


def _healthy(_event: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "HEALTHY"}


def build(h: Harness, ledger: Any) -> World:
    world = World(h, ledger)
    role_arn = h.client("iam").create_role(
        RoleName="dr-functions",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    east, west = h.client("rds", E), h.client("rds", W)
    east.create_global_cluster(
        GlobalClusterIdentifier=GLOBAL, Engine="aurora-mysql", DeletionProtection=True
    )
    east.create_db_cluster(
        DBClusterIdentifier=names.cluster("primary", ENV),
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-secret-1",
        GlobalClusterIdentifier=GLOBAL,
    )
    west.create_db_cluster(
        DBClusterIdentifier=names.cluster("secondary", ENV),
        Engine="aurora-mysql",
        GlobalClusterIdentifier=GLOBAL,
    )
    endpoint = world._global_cluster(GLOBAL).endpoint
    _secrets(h)
    for role, region in ROLES.items():
        dynamodb = h.client("dynamodb", region)
        resources.create_tables(dynamodb, ENV)
        dynamodb.put_item(
            TableName=names.region_control_table(ENV),
            Item=region_control.to_item(region_control.RegionControl(E, START_EPOCH, "t", "test")),
        )
        world.queue_urls[region] = resources.create_queues(h.client("sqs", region), role, ENV)
        events = h.client("events", region)
        events.create_event_bus(Name=names.event_bus(ENV))
        events.put_rule(
            Name=names.event_rule(role, ENV),
            EventBusName=names.event_bus(ENV),
            EventPattern=json.dumps(resources.rule_pattern()),
        )
        lam = h.client("lambda", region)
        for function in (
            names.processor_function(role, ENV),
            names.health_function(role, ENV),
            names.ledger_export_function(role, ENV),
            names.schema_migration_function(role, ENV),
        ):
            lam.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role_arn,
                Handler="handler.lambda_handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": {"DB_HOST": endpoint}},
            )
        processor = names.processor_function(role, ENV)
        version = lam.publish_version(FunctionName=processor)["Version"]
        lam.create_alias(
            FunctionName=processor, Name=names.PROCESSOR_ALIAS, FunctionVersion=version
        )
        lam.put_function_concurrency(FunctionName=processor, ReservedConcurrentExecutions=25)
        h.client("ssm", region).put_parameter(
            Name=names.writer_endpoint_parameter(ENV), Value=endpoint, Type="String"
        )
        world.handlers[(region, processor)] = _processor(world, role, region)
        world.handlers[(region, names.ledger_export_function(role, ENV))] = _export(world)
        world.handlers[(region, names.health_function(role, ENV))] = _healthy
    h.add_hook(world.hook)
    # The secondary's rotation stack takes its inputs from stacks of its own region.
    _add_rotation_stacks(h)
    made = h.drctl("deploy", "--only", "keys-secondary", "network-secondary", "aurora-secondary")
    assert made.code == 0, made.err
    h.recorder.clear()
    return world


def _secrets(h: Harness) -> None:
    """Master and application secrets, replicated to the secondary, as secrets.yaml and
    secrets-rotation.yaml leave them: attached to the primary cluster, rotating there; this
    region's ARNs in its SSM parameters (params.yaml)."""
    from moto.secretsmanager.models import secretsmanager_backends

    secrets = h.client("secretsmanager", E)
    attached = {
        "host": f"{names.cluster('primary', ENV)}.cluster-x.{E}.rds.amazonaws.com",
        "port": 3306,
        "dbClusterIdentifier": names.cluster("primary", ENV),
    }
    master = secrets.create_secret(
        Name=names.master_secret(ENV),
        SecretString=json.dumps({"username": MASTER_USER, "password": MASTER_PASSWORD, **attached}),
        AddReplicaRegions=[{"Region": W}],
    )["ARN"]
    app = {"username": APP_USER, "password": APP_PASSWORD, "masterarn": master, **attached}
    secrets.create_secret(
        Name=names.app_secret(ENV), SecretString=json.dumps(app), AddReplicaRegions=[{"Region": W}]
    )
    for user, name in (("master", names.master_secret(ENV)), ("app", names.app_secret(ENV))):
        function = (
            f"arn:aws:lambda:{E}:{ACCOUNT}:function:{names.rotation_function(user, 'primary', ENV)}"
        )
        set_rotation(secretsmanager_backends[ACCOUNT][E].secrets[name], function, {})
    for region in (E, W):
        for path, name in (
            ("aurora/master-secret-arn", names.master_secret(ENV)),
            ("aurora/app-secret-arn", names.app_secret(ENV)),
        ):
            arn = h.client("secretsmanager", region).describe_secret(SecretId=name)["ARN"]
            h.client("ssm", region).put_parameter(
                Name=f"/dr-payment/{ENV}/{path}", Value=arn, Type="String"
            )
