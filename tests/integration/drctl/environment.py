"""A deployed environment in moto, with what moto's CloudFormation skips made by hand:
the SAM stacks, the region-control table, event rules, processors, the Aurora global cluster,
and documents with several versions and delete markers."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ACCOUNT, ENV, PRIMARY, SECONDARY

ROLES = {"primary": PRIMARY, "secondary": SECONDARY}
TABLES = [f"dr-payment-sessions-{ENV}", f"dr-payment-region-control-{ENV}"]
GLOBAL = f"dr-payment-global-{ENV}"
CLUSTERS = {"primary": f"dr-payment-primary-{ENV}", "secondary": f"dr-payment-secondary-{ENV}"}
WRITER_INSTANCE = f"dr-payment-primary-{ENV}-writer"
DOCS = {role: f"dr-payment-docs-{role}-{ENV}-{ACCOUNT}" for role in ROLES}
SAM_STACK = 'Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: "%s"}\n'


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def deploy_everything(h: Harness) -> None:
    result = h.drctl("deploy", "--param", "budget.BudgetEmail=ops@example.com")
    assert result.code == 0, result.err
    role_arn = h.client("iam").create_role(
        RoleName="processor",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    for role, region in ROLES.items():
        h.client("cloudformation", region).create_stack(
            StackName=f"dr-payment-{role}-{ENV}", TemplateBody=SAM_STACK % f"parked-{role}"
        )
        ddb = h.client("dynamodb", region)
        for table in TABLES:
            key = "payment_id" if "sessions" in table else "pk"
            ddb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                DeletionProtectionEnabled=True,
            )
        ddb.put_item(
            TableName=TABLES[1],
            Item={
                "pk": {"S": "active-region"},
                "active_region": {"S": PRIMARY},
                "epoch": {"N": "7"},
            },
        )
        events = h.client("events", region)
        events.create_event_bus(Name=f"dr-payment-bus-{ENV}")
        events.put_rule(
            Name=f"dr-payment-event-rule-{role}-{ENV}",
            EventBusName=f"dr-payment-bus-{ENV}",
            EventPattern=json.dumps({"source": ["payment.service"]}),
        )
        h.client("lambda", region).create_function(
            FunctionName=f"dr-payment-processor-{role}-{ENV}",
            Runtime="python3.12",
            Role=role_arn,
            Handler="handler.lambda_handler",
            Code={"ZipFile": _zip()},
        )
    _aurora(h)
    _documents(h)


def _aurora(h: Harness) -> None:
    east, west = h.client("rds", PRIMARY), h.client("rds", SECONDARY)
    # the global cluster itself comes from the aurora-primary stack (conftest's emulation)
    east.create_db_cluster(
        DBClusterIdentifier=CLUSTERS["primary"],
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-secret-1",
        GlobalClusterIdentifier=GLOBAL,
        DeletionProtection=True,
    )
    east.create_db_instance(
        DBInstanceIdentifier=WRITER_INSTANCE,
        DBClusterIdentifier=CLUSTERS["primary"],
        Engine="aurora-mysql",
        DBInstanceClass="db.r6g.large",
    )
    west.create_db_cluster(
        DBClusterIdentifier=CLUSTERS["secondary"],
        Engine="aurora-mysql",
        GlobalClusterIdentifier=GLOBAL,
        DeletionProtection=True,
    )


def _documents(h: Harness) -> None:
    s3 = h.client("s3", PRIMARY)
    bucket = DOCS["primary"]
    # moto's CloudFormation ignores VersioningConfiguration
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=bucket, Key="receipts/p-1.pdf", Body=body)
    s3.put_object(Bucket=bucket, Key="receipts/p-2.pdf", Body=b"only")
    s3.delete_object(Bucket=bucket, Key="receipts/p-1.pdf")  # a delete marker
    s3.delete_object(Bucket=bucket, Key="receipts/p-2.pdf")


def versions(h: Harness, role: str) -> int:
    answer: dict[str, Any] = h.client("s3", ROLES[role]).list_object_versions(Bucket=DOCS[role])
    return len(answer.get("Versions", [])) + len(answer.get("DeleteMarkers", []))
