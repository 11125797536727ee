"""Reserved concurrency read from the real template, and the Lambda/EC2 answers as botocore's
models define them (Stubber checks the request and response shapes)."""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.stub import Stubber

from ops.drctl import capacity
from ops.drctl.plan import StackSpec
from ops.drctl.sam import sam_parameters, sam_template

ROOT = Path(__file__).resolve().parents[3]
PRIMARY = StackSpec("sam-primary", "dr-payment-primary-dev", "primary", "us-east-1", "sam", None, 1)


def test_reservations_come_from_the_real_template_and_its_parameters() -> None:
    template = sam_template(ROOT)
    values = sam_parameters(PRIMARY, root=ROOT, env="dev")

    found = capacity.reservations(template.document, values, template.parameters)

    by_id = {r.logical_id: r for r in found}
    assert by_id["PaymentProcessorFunction"].amount == 25
    assert by_id["PaymentProcessorFunction"].parameter == "ProcessorReservedConcurrency"
    assert by_id["PaymentProcessorFunction"].function_name == "dr-payment-processor-primary-dev"
    assert by_id["HealthFunction"].amount == 5
    lowered = capacity.reservations(
        template.document, {**values, "ProcessorReservedConcurrency": "2"}, template.parameters
    )
    # Only the processor's reservation moved (25 -> 2); every other function's stays counted.
    assert sum(r.amount for r in lowered) == sum(r.amount for r in found) - 25 + 2


def test_a_literal_or_global_reservation_counts_too() -> None:
    document = {
        "Globals": {"Function": {"ReservedConcurrentExecutions": 3}},
        "Resources": {
            "Monitor": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "Plain": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"ReservedConcurrentExecutions": 1, "FunctionName": "plain"},
            },
            "Unreserved": {"Type": "AWS::Lambda::Function", "Properties": {}},
        },
    }
    found = capacity.reservations(document, {}, {})
    assert [(r.logical_id, r.amount, r.function_name) for r in found] == [
        ("Monitor", 3, None),
        ("Plain", 1, "plain"),
    ]


def test_the_verdict_from_the_real_api_shapes() -> None:
    client = boto3.client("lambda", region_name="us-east-1")
    wanted = [
        capacity.Reservation(
            "PaymentProcessorFunction", "dr-payment-processor-primary-dev", 25, None
        ),
        capacity.Reservation("HealthFunction", "dr-payment-health-primary-dev", 5, None),
    ]
    with Stubber(client) as stub:
        stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 975}},
        )
        stub.add_response(  # already deployed with 25: counted in the 25 reserved today
            "get_function_concurrency",
            {"ReservedConcurrentExecutions": 25},
            {"FunctionName": "dr-payment-processor-primary-dev"},
        )
        stub.add_client_error(
            "get_function_concurrency",
            "ResourceNotFoundException",
            expected_params={"FunctionName": "dr-payment-health-primary-dev"},
        )
        verdict = capacity.concurrency_verdict(client, wanted)
    assert (verdict.wanted, verdict.held, verdict.unreserved_after) == (30, 25, 970)
    assert verdict.fits and verdict.quota_needed == 130


def test_zone_ids_are_mapped_to_this_accounts_names_before_comparing() -> None:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_availability_zones",
            {
                "AvailabilityZones": [
                    {"ZoneName": "us-east-1a", "ZoneId": "use1-az4", "State": "available"},
                    {"ZoneName": "us-east-1b", "ZoneId": "use1-az1", "State": "available"},
                    {"ZoneName": "us-east-1c", "ZoneId": "use1-az2", "State": "available"},
                ]
            },
        )
        stub.add_response(
            "describe_vpc_endpoint_services",
            {
                "ServiceDetails": [
                    {
                        "ServiceName": "com.amazonaws.us-east-1.rds",
                        "AvailabilityZones": ["us-east-1b", "us-east-1c"],  # names, not IDs
                    }
                ]
            },
            {"ServiceNames": ["com.amazonaws.us-east-1.rds"]},
        )
        report = capacity.zone_report(
            client, ["use1-az1", "use1-az4", "use1-az9"], ["com.amazonaws.us-east-1.rds"]
        )
    assert report.unknown == ["use1-az9"]
    assert report.missing == {"com.amazonaws.us-east-1.rds": ["use1-az4"]}
    assert report.label(["use1-az4"]) == "use1-az4 (us-east-1a in this account)"
