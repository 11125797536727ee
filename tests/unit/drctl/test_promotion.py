"""Promotion of the secondary with botocore's Stubber (moto has neither failover- nor
switchover-global-cluster): exact calls and parameters, the fallback to detach-and-promote,
and the bounded clients a dead region is reached through."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError

from ops.drctl import aurora
from ops.drctl.aws import BOUNDED_CONFIG, ClientFactory
from tests.unit.drctl.stubs import stubbed_context

E, W = "us-east-1", "us-west-2"
GLOBAL = "dr-payment-global-dev"
PRIMARY_ARN = f"arn:aws:rds:{E}:123456789012:cluster:dr-payment-primary-dev"
SECONDARY_ARN = f"arn:aws:rds:{W}:123456789012:cluster:dr-payment-secondary-dev"
BY_ID = {"GlobalClusterIdentifier": GLOBAL}


def described(
    writer: str, *, status: str = "available", members: tuple[str, ...] = ()
) -> dict[str, Any]:
    arns = members or (PRIMARY_ARN, SECONDARY_ARN)
    return {
        "GlobalClusters": [
            {
                "GlobalClusterIdentifier": GLOBAL,
                "Status": status,
                "Endpoint": f"{GLOBAL}.global-abc.global.rds.amazonaws.com",
                "GlobalClusterMembers": [
                    {"DBClusterArn": arn, "IsWriter": arn == writer} for arn in arns
                ],
            }
        ]
    }


def test_managed_failover_allows_data_loss_and_waits_for_the_new_writer() -> None:
    ctx, factory, err = stubbed_context()
    west = factory.stub("rds", W)
    west.add_response(
        "failover_global_cluster",
        {},
        {
            "GlobalClusterIdentifier": GLOBAL,
            "TargetDbClusterIdentifier": SECONDARY_ARN,
            "AllowDataLoss": True,
        },
    )
    west.add_response(
        "describe_global_clusters", described(PRIMARY_ARN, status="failing-over"), BY_ID
    )
    west.add_response("describe_global_clusters", described(SECONDARY_ARN), BY_ID)

    promotion = aurora.failover(ctx, W, GLOBAL, SECONDARY_ARN)
    aurora.wait_for_promotion(ctx, W, GLOBAL, SECONDARY_ARN, promotion.how)

    assert promotion == aurora.Promotion("failover-global-cluster")
    assert factory.order == [
        (W, "FailoverGlobalCluster"),
        (W, "DescribeGlobalClusters"),
        (W, "DescribeGlobalClusters"),
    ]
    assert "to be the writer" in err.getvalue()
    factory.assert_no_pending()


@pytest.mark.parametrize(
    "refusal", ["InvalidGlobalClusterStateFault", "InvalidDBClusterStateFault"]
)
def test_a_failover_whose_first_call_fails_takes_detach_and_promote(refusal: str) -> None:
    ctx, factory, _ = stubbed_context()
    west = factory.stub("rds", W)
    west.add_client_error("failover_global_cluster", service_error_code=refusal)
    west.add_response(
        "remove_from_global_cluster",
        {},
        {"GlobalClusterIdentifier": GLOBAL, "DbClusterIdentifier": SECONDARY_ARN},
    )
    # still a member, then gone and available: a standalone writer
    west.add_response("describe_global_clusters", described(PRIMARY_ARN), BY_ID)
    west.add_response(
        "describe_global_clusters", described(PRIMARY_ARN, members=(PRIMARY_ARN,)), BY_ID
    )
    west.add_response(
        "describe_db_clusters",
        {
            "DBClusters": [
                {"DBClusterIdentifier": "dr-payment-secondary-dev", "Status": "available"}
            ]
        },
        {"DBClusterIdentifier": "dr-payment-secondary-dev"},
    )

    promotion = aurora.failover(ctx, W, GLOBAL, SECONDARY_ARN)
    aurora.wait_for_promotion(ctx, W, GLOBAL, SECONDARY_ARN, promotion.how)

    assert promotion == aurora.Promotion("detach-and-promote", refusal)
    writes = [op for _, op in factory.order if not op.startswith("Describe")]
    assert writes == ["FailoverGlobalCluster", "RemoveFromGlobalCluster"]
    factory.assert_no_pending()


def test_a_failover_call_that_times_out_also_takes_detach_and_promote() -> None:
    """At the HTTP layer (no Stubber: it answers before any transport): the call never connects."""
    sent: list[str] = []

    def transport(client: Any, service: str, region: str) -> None:
        def send(request: Any, event_name: str, **_: Any) -> AWSResponse:
            operation = event_name.rsplit(".", 1)[-1]
            sent.append(operation)
            if operation == "FailoverGlobalCluster":
                raise ConnectTimeoutError(endpoint_url=request.url)
            return AWSResponse(request.url, 200, {}, _Raw(REMOVED))

        client.meta.events.register_first("before-send", send)

    ctx, _, _ = stubbed_context()
    # two attempts, not eight: the fallback, not botocore's backoff, is under test
    ctx.aws = ClientFactory(hooks=[transport], config=Config(retries={"total_max_attempts": 2}))

    promotion = aurora.failover(ctx, W, GLOBAL, SECONDARY_ARN)

    assert promotion == aurora.Promotion("detach-and-promote", "ConnectTimeoutError")
    # the survivor's clients are not bounded: botocore retried before drctl fell back
    assert sent == ["FailoverGlobalCluster", "FailoverGlobalCluster", "RemoveFromGlobalCluster"]


REMOVED = (
    b"<RemoveFromGlobalClusterResponse><RemoveFromGlobalClusterResult/>"
    b"</RemoveFromGlobalClusterResponse>"
)


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


def test_switchover_names_the_target_by_arn() -> None:
    ctx, factory, _ = stubbed_context()
    factory.stub("rds", W).add_response(
        "switchover_global_cluster",
        {},
        {"GlobalClusterIdentifier": GLOBAL, "TargetDbClusterIdentifier": SECONDARY_ARN},
    )
    factory.stub("rds", W).add_response("describe_global_clusters", described(SECONDARY_ARN), BY_ID)

    aurora.switchover(ctx, W, GLOBAL, SECONDARY_ARN)
    aurora.wait_for_writer(ctx, W, GLOBAL, SECONDARY_ARN)

    factory.assert_no_pending()


def test_a_possibly_dead_region_gets_one_short_attempt_per_call() -> None:
    factory = ClientFactory()
    bounded = factory.client("dynamodb", E, bounded=True)
    normal = factory.client("dynamodb", E)

    assert bounded is not normal
    assert bounded.meta.config.connect_timeout == BOUNDED_CONFIG.connect_timeout == 3
    assert bounded.meta.config.read_timeout == 5
    assert bounded.meta.config.retries["total_max_attempts"] == 1
    assert normal.meta.config.retries["total_max_attempts"] > 1
