"""Build the AWS side of the sandbox (and of the tests) from the templates' own definitions, so
the local tables, queues and rule cannot drift from what is deployed. Works against any boto3
client: in-process moto (`mock_aws`) or the moto server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from shared import names, region_control
from shared.adapters.region_control import DynamoRegionControl

ROOT = Path(__file__).resolve().parents[2]
REGIONAL_TEMPLATE = ROOT / "template.yaml"
TABLES_TEMPLATE = ROOT / "infra-global" / "tables.yaml"
REGIONS = {"primary": "us-east-1", "secondary": "us-west-2"}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Sub, !Ref …) become {"Fn::X": …}."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@lru_cache(maxsize=8)
def load_template(path: Path) -> dict[str, Any]:
    with open(path) as handle:
        return dict(yaml.load(handle, Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass


def _sub(value: Any, env: str) -> str:
    """Resolve the only intrinsic the table names use: !Sub with ${Environment}."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${Environment}", env)
    return str(value)


def table_definitions(env: str) -> list[dict[str, Any]]:
    """create_table arguments for every global table in infra-global/tables.yaml."""
    definitions = []
    for resource in load_template(TABLES_TEMPLATE)["Resources"].values():
        if resource["Type"] != "AWS::DynamoDB::GlobalTable":
            continue
        props = resource["Properties"]
        definition = {
            "TableName": _sub(props["TableName"], env),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"],
        }
        if "GlobalSecondaryIndexes" in props:
            definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            definition["StreamSpecification"] = {
                "StreamEnabled": True,
                **props["StreamSpecification"],
            }
        definitions.append(definition)
    return definitions


def create_tables(dynamodb: Any, env: str) -> list[str]:
    created = []
    existing = set(dynamodb.list_tables()["TableNames"])
    for definition in table_definitions(env):
        if definition["TableName"] not in existing:
            dynamodb.create_table(**definition)
            created.append(definition["TableName"])
    return created


def queue_names(role: str, env: str) -> dict[str, str]:
    """standby, rejected, dlq, failures (shared.names)."""
    return names.queues(role, env)


def create_queues(sqs: Any, role: str, env: str) -> dict[str, str]:
    """The regional queues; returns their URLs by purpose."""
    return {
        purpose: sqs.create_queue(
            QueueName=name, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
        )["QueueUrl"]
        for purpose, name in queue_names(role, env).items()
    }


def rule_pattern() -> dict[str, Any]:
    """The processor rule's event pattern, as template.yaml declares it."""
    resources = load_template(REGIONAL_TEMPLATE)["Resources"]
    for resource in resources.values():
        if resource.get("Type") == "AWS::Serverless::Function":
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") == "EventBridgeRule":
                    return dict(event["Properties"]["Pattern"])
        if resource.get("Type") == "AWS::Events::Rule":
            return dict(resource["Properties"]["EventPattern"])
    raise LookupError("no EventBridge rule for the processor in template.yaml")


def create_bus_with_rule(events: Any, sqs: Any, role: str, env: str) -> str:
    """The bus and the processor's rule, with an SQS queue standing in for the function (moto
    cannot invoke Lambda without Docker). Returns the stand-in queue's URL."""
    bus = names.event_bus(env)
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    rule = names.event_rule(role, env)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(rule_pattern()))
    queue_url = sqs.create_queue(QueueName=f"dr-payment-processor-inbox-{role}-{env}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": "processor-stand-in", "Arn": queue_arn}]
    )
    return str(queue_url)


def seed_active_region(dynamodb: Any, env: str, region: str) -> None:
    """Make `region` the active one, through the contract's own writer: the epoch keeps growing
    across resets (a fresh table starts at 1)."""
    control = DynamoRegionControl(dynamodb, names.region_control_table(env))
    at = datetime.now(UTC).isoformat(timespec="seconds")
    current = control.read()
    wanted = (
        region_control.first(region, actor="ops.sandbox", at=at)
        if current is None
        else current.successor(region, actor="ops.sandbox", at=at)
    )
    control.write(wanted)


def create_app_secret(secretsmanager: Any, env: str, username: str, password: str) -> str:
    """The application user's secret, under its shared name (the tests' in-process moto)."""
    name = names.app_secret(env)
    value = json.dumps({"username": username, "password": password})
    try:
        return str(secretsmanager.create_secret(Name=name, SecretString=value)["ARN"])
    except secretsmanager.exceptions.ResourceExistsException:
        secretsmanager.put_secret_value(SecretId=name, SecretString=value)
        return str(secretsmanager.describe_secret(SecretId=name)["ARN"])
