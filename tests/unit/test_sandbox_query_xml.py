"""The sandbox front answers RDS calls moto lacks in AWS's query-protocol XML, written from
botocore's own service model: botocore must parse them exactly as AWS's answers (member names,
booleans, lists), and errors must arrive as the error codes drctl branches on."""

from __future__ import annotations

from typing import Any

from botocore.parsers import create_parser

from ops.sandbox.front import query_xml

MODEL = query_xml.service_model("rds")


def _parse(operation: str, body: bytes, status: int = 200) -> dict[str, Any]:
    parser = create_parser("query")
    output = MODEL.operation_model(operation).output_shape
    return dict(parser.parse({"body": body, "headers": {}, "status_code": status}, output))


def test_a_global_cluster_parses_with_its_writer_flags_and_endpoint() -> None:
    cluster = {
        "GlobalClusterIdentifier": "dr-payment-global-dev",
        "Status": "available",
        "DeletionProtection": True,
        "Endpoint": "dr-payment-global-dev.global-sandbox.global.rds.amazonaws.com",
        "GlobalClusterMembers": [
            {"DBClusterArn": "arn:aws:rds:us-east-1:1:cluster:a", "IsWriter": False},
            {"DBClusterArn": "arn:aws:rds:us-west-2:1:cluster:b", "IsWriter": True},
        ],
    }
    body = query_xml.response(MODEL, "DescribeGlobalClusters", {"GlobalClusters": [cluster]})

    parsed = _parse("DescribeGlobalClusters", body)

    (found,) = parsed["GlobalClusters"]
    assert found["DeletionProtection"] is True and found["Endpoint"] == cluster["Endpoint"]
    assert [(m["DBClusterArn"][-1], m["IsWriter"]) for m in found["GlobalClusterMembers"]] == [
        ("a", False),
        ("b", True),
    ]


def test_an_error_arrives_as_the_code_drctl_branches_on() -> None:
    body = query_xml.error("GlobalClusterNotFoundFault", "dr-payment-global-dev not found")

    parsed = _parse("DescribeGlobalClusters", body, status=404)

    assert parsed["Error"]["Code"] == "GlobalClusterNotFoundFault"
    assert "not found" in parsed["Error"]["Message"]
