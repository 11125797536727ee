"""Composition root: the real adapters, built once per execution environment, on first use."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from health.wiring import build_service as build_health
from replication_monitor.probes import Config, Ports, probes
from replication_monitor.service import ReplicationMonitor
from shared import names
from shared.adapters import aws
from shared.adapters.cloudwatch import CloudWatchMetrics
from shared.adapters.dynamodb import DynamoCanary
from shared.adapters.heartbeat import MySQLHeartbeat
from shared.adapters.mysql import MySQLConnector
from shared.adapters.rds import RdsGlobalCluster
from shared.adapters.region_control import DynamoRegionControl
from shared.adapters.s3 import S3Canary
from shared.config import MonitorSettings, get_monitor_settings


def build_monitor(settings: MonitorSettings) -> ReplicationMonitor:
    region, env = settings.aws_region, settings.environment
    timeout = settings.monitor_check_timeout_seconds
    sdk = aws.probe_config(timeout)
    provider = SecretsProvider(boto3_client=aws.client("secretsmanager", region, config=sdk))
    writer = MySQLConnector.from_settings(
        settings, provider=provider, connect_timeout=timeout, io_timeout=timeout
    )
    peer_host, peer_port = settings.peer_reader()
    dynamodb = aws.client("dynamodb", region, config=sdk)
    ports = Ports(
        writer=MySQLHeartbeat(writer, timeout=timeout),
        own_reader=MySQLHeartbeat(writer.at(*settings.own_reader()), timeout=timeout),
        peer_reader=MySQLHeartbeat(writer.at(peer_host, peer_port), timeout=timeout),
        sessions=DynamoCanary(dynamodb, settings.sessions_table),
        documents=S3Canary(aws.client("s3", region, config=sdk), settings.docs_bucket),
        metrics=CloudWatchMetrics(aws.client("cloudwatch", region, config=sdk)),
        global_cluster=RdsGlobalCluster(
            aws.client("rds", region, config=sdk), names.global_cluster(env)
        ),
        health=build_health(settings),
    )
    config = Config(
        env=env,
        region=region,
        peer_region=settings.peer_region,
        region_role=settings.region_role,
        cluster=names.cluster(settings.region_role, env),
        sessions_table=settings.sessions_table,
        docs_bucket=settings.docs_bucket,
        peer_docs_bucket=settings.peer_docs_bucket,
        canary_wait_seconds=settings.canary_wait_seconds,
        canary_poll_seconds=settings.canary_poll_seconds,
        metric_window_seconds=settings.metric_window_seconds,
        check_timeout_seconds=timeout,
    )
    return ReplicationMonitor(
        region=region,
        control=DynamoRegionControl(dynamodb, settings.region_control_table),
        probes=probes(ports, config),
        check_timeout_seconds=timeout,
    )


@lru_cache(maxsize=1)
def get_monitor() -> ReplicationMonitor:
    return build_monitor(get_monitor_settings())
