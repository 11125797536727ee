"""The CloudFormation adapter against botocore Stubber: what moto does not do like AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import ANY

from ops.drctl.cfn import ChangeSet
from ops.drctl.errors import StackOperationFailed, WaitTimedOut
from ops.drctl.waiting import WaitPolicy
from tests.unit.drctl.stubs import stubbed_context

REGION = "us-east-1"
NAME = "dr-payment-network-primary-dev"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{NAME}/1"
CS_ARN = f"arn:aws:cloudformation:{REGION}:123456789012:changeSet/drctl-x/1"
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def stack(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {"StackName": NAME, "StackId": STACK_ID, "CreationTime": NOW, "StackStatus": status}
        ]
    }


def events(*items: tuple[str, str, str, str]) -> dict[str, Any]:
    """(event id, logical id, status, reason), newest first as the API lists them."""
    return {
        "StackEvents": [
            {
                "StackId": STACK_ID,
                "EventId": event_id,
                "StackName": NAME,
                "Timestamp": NOW,
                "LogicalResourceId": logical,
                "ResourceType": "AWS::EC2::VPC",
                "ResourceStatus": status,
                "ResourceStatusReason": reason,
            }
            for event_id, logical, status, reason in items
        ]
    }


def test_a_change_set_without_changes_is_deleted_and_reported_as_none() -> None:
    """AWS: CreateChangeSet succeeds, the change set ends FAILED "didn't contain changes"."""
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    stub.add_response("create_change_set", {"Id": CS_ARN, "StackId": STACK_ID}, None)
    no_changes = {
        "ChangeSetId": CS_ARN,
        "StackName": NAME,
        "Status": "FAILED",
        "StatusReason": "The submitted information didn't contain changes. Submit different "
        "information to create a change set.",
    }
    expected = {"ChangeSetName": CS_ARN, "StackName": NAME}
    stub.add_response("describe_change_set", no_changes, expected)  # the waiter
    stub.add_response("describe_change_set", no_changes, expected)  # the reason
    stub.add_response("delete_change_set", {}, expected)

    result = ctx.cfn(REGION).create_change_set(
        NAME, change_type="UPDATE", template={"TemplateBody": "{}"}, parameters=[], tags={}
    )

    assert result is None
    factory.assert_no_pending()


def test_a_change_set_that_fails_for_another_reason_is_an_error() -> None:
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    stub.add_response("create_change_set", {"Id": CS_ARN, "StackId": STACK_ID}, None)
    failed = {"Status": "FAILED", "StatusReason": "Template format error: bad"}
    stub.add_response("describe_change_set", failed, None)
    stub.add_response("describe_change_set", failed, None)

    with pytest.raises(StackOperationFailed, match="Template format error"):
        ctx.cfn(REGION).create_change_set(
            NAME, change_type="CREATE", template={"TemplateBody": "{}"}, parameters=[], tags={}
        )


def test_execute_waits_with_ticks_and_prints_new_stack_events() -> None:
    ctx, factory, err = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    old = ("e0", NAME, "REVIEW_IN_PROGRESS", "User Initiated")
    vpc = ("e1", "Vpc", "CREATE_IN_PROGRESS", "")
    stub.add_response("describe_stack_events", events(old), {"StackName": NAME})
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "StackName": NAME})
    stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"), {"StackName": NAME})
    stub.add_response("describe_stack_events", events(vpc, old), {"StackName": NAME})
    stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"), {"StackName": NAME})
    stub.add_response("describe_stack_events", events(vpc, old), {"StackName": NAME})
    stub.add_response("describe_stacks", stack("CREATE_COMPLETE"), {"StackName": NAME})
    done = ("e2", "Vpc", "CREATE_COMPLETE", "")
    stub.add_response("describe_stack_events", events(done, vpc, old), {"StackName": NAME})

    ctx.cfn(REGION).execute(ChangeSet(NAME, CS_ARN, "CREATE", ()), WaitPolicy(15, 10))

    lines = err.getvalue().splitlines()
    assert [line.strip() for line in lines if "Vpc" in line] == [
        "us-east-1 Vpc (AWS::EC2::VPC) CREATE_IN_PROGRESS",
        "us-east-1 Vpc (AWS::EC2::VPC) CREATE_COMPLETE",
    ]
    ticks = [line for line in lines if "waiting:" in line]
    assert len(ticks) == 2
    assert ticks[0].strip().startswith("[00:10] waiting: dr-payment-network-primary-dev")
    assert "check 2/10" in ticks[1]
    factory.assert_no_pending()


def test_a_failed_create_names_the_resource_and_its_reason() -> None:
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    stub.add_response("describe_stack_events", events(), None)
    stub.add_response("execute_change_set", {}, None)
    stub.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), None)
    failure = ("e1", "Vpc", "CREATE_FAILED", "The maximum number of VPCs has been reached.")
    stub.add_response("describe_stack_events", events(failure), None)

    with pytest.raises(StackOperationFailed, match="Vpc: The maximum number of VPCs"):
        ctx.cfn(REGION).execute(ChangeSet(NAME, CS_ARN, "CREATE", ()), WaitPolicy(15, 10))


def test_a_wait_that_runs_out_of_attempts_says_so() -> None:
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    for _ in range(3):
        stub.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), None)
    with pytest.raises(WaitTimedOut, match="re-run"):
        ctx.cfn(REGION).wait(
            "stack_delete_complete", WaitPolicy(60, 3), label="x", StackName=STACK_ID
        )


def test_a_delete_failing_only_on_what_drctl_already_deleted_is_retried_retaining_it() -> None:
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    stub.add_response("describe_stacks", stack("DELETE_FAILED"), {"StackName": NAME})
    summary = {
        "LogicalResourceId": "Cluster",
        "ResourceType": "AWS::RDS::DBCluster",
        "ResourceStatus": "DELETE_FAILED",
        "LastUpdatedTimestamp": NOW,
    }
    stub.add_response(
        "list_stack_resources", {"StackResourceSummaries": [summary]}, {"StackName": NAME}
    )
    stub.add_response("describe_stack_events", events(), None)
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID, "RetainResources": ["Cluster"]})
    stub.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    stub.add_response("describe_stack_events", events(), None)

    deleted = ctx.cfn(REGION).delete_stack(
        NAME, WaitPolicy(30, 5), gone_types=frozenset({"AWS::RDS::DBCluster"})
    )

    assert deleted is True
    factory.assert_no_pending()


def test_a_missing_stack_is_none_and_deleting_it_is_a_no_op() -> None:
    ctx, factory, _ = stubbed_context()
    stub = factory.stub("cloudformation", REGION)
    for _ in range(2):
        stub.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message=f"Stack with id {NAME} does not exist",
            expected_params={"StackName": ANY},
        )
    assert ctx.cfn(REGION).describe(NAME) is None
    assert ctx.cfn(REGION).delete_stack(NAME) is False
