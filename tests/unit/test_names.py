"""template.yaml spells the shared names with !Sub: they must be the ones shared/names.py gives
drctl and the sandbox (one definition per fact, checked here)."""

from __future__ import annotations

from typing import Any

import pytest

from ops.sandbox.functions import Resolver
from ops.sandbox.resources import REGIONAL_TEMPLATE, load_template
from shared import names

ENV = "staging"


def _resolver(role: str) -> Resolver:
    return Resolver(
        region="us-west-2",
        parameters={"Environment": ENV, "RegionRole": role},
        ssm={},
        queue_urls={},
    )


def _resources() -> dict[str, Any]:
    return dict(load_template(REGIONAL_TEMPLATE)["Resources"])


@pytest.mark.parametrize("role", names.ROLES)
def test_the_regional_queues_are_the_shared_names(role: str) -> None:
    resolve = _resolver(role)
    declared = {
        resolve.resolve(resource["Properties"]["QueueName"])
        for resource in _resources().values()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    assert declared == set(names.queues(role, ENV).values())


@pytest.mark.parametrize("role", names.ROLES)
def test_the_functions_and_the_rule_are_the_shared_names(role: str) -> None:
    resolve = _resolver(role)
    resources = _resources()
    function_names = {
        logical: resolve.resolve(resource["Properties"]["FunctionName"])
        for logical, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert function_names == {
        "PaymentProcessorFunction": names.processor_function(role, ENV),
        "HealthFunction": names.health_function(role, ENV),
        "LedgerExportFunction": names.ledger_export_function(role, ENV),
        "SchemaMigrationFunction": names.schema_migration_function(role, ENV),
        "ReplicationMonitorFunction": names.monitor_function(role, ENV),
    }
    processor = resources["PaymentProcessorFunction"]["Properties"]
    rule = processor["Events"]["PaymentTransaction"]["Properties"]
    assert resolve.resolve(rule["RuleName"]) == names.event_rule(role, ENV)
    assert processor["AutoPublishAlias"] == names.PROCESSOR_ALIAS
    bus = resources["PaymentEventBus"]["Properties"]["Name"]
    assert resolve.resolve(bus) == names.event_bus(ENV)


def test_queues_that_hold_payments_survive_stack_deletion_and_replacement() -> None:
    for logical, resource in _resources().items():
        if resource["Type"] == "AWS::SQS::Queue":
            assert resource.get("DeletionPolicy") == "Retain", logical
            assert resource.get("UpdateReplacePolicy") == "Retain", logical


def test_the_standby_queue_outlives_an_incident_and_the_rejected_one_a_fortnight() -> None:
    resources = _resources()
    retention = {
        logical: int(resources[logical]["Properties"]["MessageRetentionPeriod"])
        for logical in ("StandbyQueue", "RejectedQueue")
    }
    assert retention["StandbyQueue"] >= 4 * 24 * 3600
    assert retention["RejectedQueue"] == 14 * 24 * 3600


def test_the_monitor_may_write_only_canary_keys_of_the_sessions_table() -> None:
    """The IAM condition spells the canary prefix the monitor writes (shared/names.py)."""
    monitor = _resources()["ReplicationMonitorFunction"]["Properties"]
    [statement] = [
        s
        for policy in monitor["Policies"]
        for s in policy.get("Statement", [])
        if s.get("Sid") == "SessionsCanary"
    ]
    assert "dynamodb:PutItem" in statement["Action"]
    leading = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading == [f"{names.CANARY_KEY_PREFIX}*"]
    assert names.canary_key("us-east-1").startswith(names.CANARY_KEY_PREFIX)
