"""ReplicationMonitorFunction's real handler against the two-region ledger (a real MariaDB binlog
replica, lagged and stopped on purpose) and moto: the ledger's end-to-end lag reads the delay,
a stopped replica's figure grows until its alarm's condition is met, and AWS figures moto has no
datapoints for come out missing, never 0."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ops.drctl.template import load_template
from shared import metric_names
from tests.conftest import ROOT
from tests.integration.two_regions import TwoRegions, emf_blobs, figures, two_regions

pytestmark = pytest.mark.integration


@pytest.fixture
def regions(replicated_ledger: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoRegions]:
    with two_regions(replicated_ledger, monkeypatch) as both:
        yield both


def canary_lag(answer: dict[str, Any]) -> dict[str, Any]:
    return figures(answer)[(metric_names.CANARY_LAG, "aurora")]


@pytest.mark.parametrize("delay", [0, 5, 30])
def test_the_ledgers_canary_lag_reads_the_replicas_delay(regions: TwoRegions, delay: int) -> None:
    regions.pair.delay(delay)

    answer = regions.monitor("primary")

    lag = canary_lag(answer)
    print(f"replica delayed {delay}s: canary lag {lag['value']}s ({lag['note']})")
    assert answer["role"] == "active"
    assert lag["target_region"] == "us-west-2"
    assert lag["note"] == "heartbeat seen on the peer's reader"
    # Binlog timestamps are whole seconds: a change may apply up to 1 s before the delay.
    assert delay - 1 <= lag["value"] <= delay + 1
    rpo = figures(answer)[(metric_names.RPO_ESTIMATE, "us-west-2")]
    assert rpo["value"] == pytest.approx(lag["value"], abs=0.001)


def _alarm(logical_id: str) -> dict[str, Any]:
    return dict(load_template(ROOT / "template.yaml").document["Resources"][logical_id])


def _default(parameter: str) -> float:
    return float(load_template(ROOT / "template.yaml").document["Parameters"][parameter]["Default"])


def alarm_fires(alarm: dict[str, Any], datapoints: list[float]) -> bool:
    """CloudWatch's verdict on the newest EvaluationPeriods datapoints (one a period, the way
    the monitor publishes one a minute), with the template's default threshold."""
    props = alarm["Properties"]
    threshold = props["Threshold"]
    value = _default(threshold["Ref"]) if isinstance(threshold, dict) else float(threshold)
    compare = {
        "GreaterThanThreshold": lambda v: v > value,
        "LessThanThreshold": lambda v: v < value,
    }[props["ComparisonOperator"]]
    window = datapoints[-props["EvaluationPeriods"] :]
    needed = props.get("DatapointsToAlarm", props["EvaluationPeriods"])
    return sum(1 for v in window if compare(v)) >= needed


def test_with_replication_stopped_the_lag_grows_and_its_alarm_fires(regions: TwoRegions) -> None:
    pair = regions.pair
    regions.monitor("primary")  # a heartbeat reaches us-west-2
    # It reached it 90 s ago (instead of waiting 90 s): changed on the writer, replicated.
    with pair.primary.root("payments") as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE replication_heartbeat SET written_at = written_at - INTERVAL 90 SECOND "
            "WHERE origin_region = 'us-east-1'"
        )
    pair.wait_caught_up()
    pair.break_()  # nothing arrives any more

    first = canary_lag(regions.monitor("primary", MONITOR_CANARY_WAIT_SECONDS="1"))
    time.sleep(1)
    second = canary_lag(regions.monitor("primary", MONITOR_CANARY_WAIT_SECONDS="1"))

    print(f"replication stopped: canary lag {first['value']}s, then {second['value']}s")
    assert first["note"].startswith("heartbeat not seen within")
    assert 90 < first["value"] < second["value"]  # the age of the newest one there, growing
    alarm = _alarm("LedgerCanaryLagAlarm")
    dims = {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}
    assert (alarm["Properties"]["MetricName"], dims["Store"]) == (metric_names.CANARY_LAG, "aurora")
    assert dims["TargetRegion"] == {"Ref": "PeerRegion"}  # us-west-2, seen from us-east-1
    assert alarm_fires(alarm, [first["value"], second["value"]])
    assert not alarm_fires(alarm, [0.05, 0.04])  # and it does not while replication is live


def test_aws_metrics_moto_has_no_datapoints_for_are_missing_not_zero(
    regions: TwoRegions, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = regions.monitor("primary")
    emf = emf_blobs(capsys.readouterr().out)

    seen = figures(answer)
    for store in ("dynamodb", "s3"):
        lag = seen[(metric_names.REPLICATION_LAG, store)]
        assert lag["value"] is None and lag["note"] == "no datapoint in the window"
        assert lag in answer["missing"]
    published = {
        (blob["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], blob.get("Store"))
        for blob in emf
    }
    assert (metric_names.REPLICATION_LAG, "dynamodb") not in published  # no 0 in CloudWatch
    assert (metric_names.CANARY_LAG, "aurora") in published
    assert seen[(metric_names.FIGURES_MISSING, "us-east-1")]["value"] == 2.0


def test_a_datapoint_aws_publishes_is_read_with_its_dimensions_and_unit(
    regions: TwoRegions,
) -> None:
    import boto3

    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ReplicationLatency",
                "Dimensions": [
                    {"Name": "TableName", "Value": "dr-payment-sessions-test"},
                    {"Name": "ReceivingRegion", "Value": "us-west-2"},
                ],
                "Value": 1250.0,
                "Unit": "Milliseconds",
            }
        ],
    )

    lag = figures(regions.monitor("primary"))[(metric_names.REPLICATION_LAG, "dynamodb")]

    assert (lag["value"], lag["target_region"]) == (1.25, "us-west-2")


def test_the_passive_region_reads_its_own_copy_and_writes_nothing(regions: TwoRegions) -> None:
    regions.monitor("primary")
    regions.pair.wait_caught_up()
    with regions.pair.servers["us-west-2"].root("payments") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM replication_heartbeat")
        rows_before = cur.fetchone()[0]

    answer = regions.monitor("secondary")

    assert (answer["role"], answer["active_region"]) == ("passive", "us-east-1")
    age = figures(answer)[(metric_names.CANARY_AGE, "aurora")]
    assert age["target_region"] == "us-west-2" and 0 <= age["value"] < 60
    # moto replicates neither global tables nor buckets: those copies are missing, not 0.
    assert figures(answer)[(metric_names.CANARY_AGE, "dynamodb")]["value"] is None
    assert regions.pair.status().caught_up  # it wrote nothing to the writer, nor the replica
    with regions.pair.servers["us-west-2"].root("payments") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM replication_heartbeat")
        assert cur.fetchone()[0] == rows_before
