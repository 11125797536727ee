"""Dismantling the global cluster, with Stubber: moto cannot detach a member in another region."""

from __future__ import annotations

from typing import Any

from ops.drctl.aurora import ClusterRef, dismantle_global_cluster
from tests.unit.drctl.stubs import stubbed_context

E, W = "us-east-1", "us-west-2"
GLOBAL = "dr-payment-global-dev"
PRIMARY_ARN = f"arn:aws:rds:{E}:123456789012:cluster:dr-payment-primary-dev"
SECONDARY_ARN = f"arn:aws:rds:{W}:123456789012:cluster:dr-payment-secondary-dev"


def described(*members: tuple[str, bool], protected: bool = True) -> dict[str, Any]:
    return {
        "GlobalClusters": [
            {
                "GlobalClusterIdentifier": GLOBAL,
                "DeletionProtection": protected,
                "GlobalClusterMembers": [
                    {"DBClusterArn": arn, "IsWriter": writer} for arn, writer in members
                ],
            }
        ]
    }


def test_secondary_detached_in_its_region_then_writer_then_the_global_cluster() -> None:
    ctx, factory, err = stubbed_context()
    east, west = factory.stub("rds", E), factory.stub("rds", W)
    both = described((PRIMARY_ARN, True), (SECONDARY_ARN, False))
    by_id = {"GlobalClusterIdentifier": GLOBAL}
    east.add_response("describe_global_clusters", both, by_id)
    west.add_response(
        "remove_from_global_cluster",
        {},
        {"GlobalClusterIdentifier": GLOBAL, "DbClusterIdentifier": SECONDARY_ARN},
    )
    east.add_response("describe_global_clusters", both, by_id)  # still detaching
    east.add_response("describe_global_clusters", described((PRIMARY_ARN, True)), by_id)
    east.add_response(
        "remove_from_global_cluster",
        {},
        {"GlobalClusterIdentifier": GLOBAL, "DbClusterIdentifier": PRIMARY_ARN},
    )
    east.add_response("describe_global_clusters", described(), by_id)
    east.add_response(
        "modify_global_cluster",
        {},
        {"GlobalClusterIdentifier": GLOBAL, "DeletionProtection": False},
    )
    east.add_response("delete_global_cluster", {}, by_id)
    east.add_client_error(
        "describe_global_clusters", service_error_code="GlobalClusterNotFoundFault"
    )

    members = dismantle_global_cluster(ctx, E, GLOBAL)

    assert members == [
        ClusterRef(W, "dr-payment-secondary-dev"),
        ClusterRef(E, "dr-payment-primary-dev"),
    ]
    writes = [(r, op) for r, op in factory.order if not op.startswith("Describe")]
    assert writes == [
        (W, "RemoveFromGlobalCluster"),
        (E, "RemoveFromGlobalCluster"),
        (E, "ModifyGlobalCluster"),
        (E, "DeleteGlobalCluster"),
    ]
    assert "waiting: dr-payment-secondary-dev to leave" in err.getvalue()
    factory.assert_no_pending()


def test_an_absent_global_cluster_is_nothing_to_do() -> None:
    ctx, factory, _ = stubbed_context()
    factory.stub("rds", E).add_client_error(
        "describe_global_clusters", service_error_code="GlobalClusterNotFoundFault"
    )
    assert dismantle_global_cluster(ctx, E, GLOBAL) == []
