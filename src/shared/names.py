"""Names the functions' templates, drctl and the sandbox all agree on (one definition each).

`dr-payment-<thing>-<env>` for what is global, `dr-payment-<thing>-<role>-<env>` for what each
region has (role = primary | secondary: the stack a thing belongs to, not which region is
active now). template.yaml and infra-global spell the same names with !Sub;
tests/unit/test_names.py checks that they agree with this module.
"""

from __future__ import annotations

from enum import StrEnum

ROLES = ("primary", "secondary")
PROCESSOR_ALIAS = "live"  # the event rule invokes this alias; so does `drctl redrive`


class Queue(StrEnum):
    """The regional queues, by what they hold (also `drctl redrive --queue` values)."""

    STANDBY = "standby"  # valid events set aside by a passive or read-only region: redriven
    REJECTED = "rejected"  # invalid or conflicting events, with their reason: for a person
    DLQ = "dlq"  # EventBridge could not deliver to the processor
    FAILURES = "failures"  # the processor failed after Lambda's retries (on-failure destination)


def sessions_table(env: str) -> str:
    return f"dr-payment-sessions-{env}"


def region_control_table(env: str) -> str:
    return f"dr-payment-region-control-{env}"


def tables(env: str) -> list[str]:
    return [sessions_table(env), region_control_table(env)]


def regional_stack(role: str, env: str) -> str:
    return f"dr-payment-{role}-{env}"


def global_cluster(env: str) -> str:
    return f"dr-payment-global-{env}"


def cluster(role: str, env: str) -> str:
    """The Aurora cluster each region's stack made (aurora-primary.yaml / aurora-secondary.yaml)."""
    return f"dr-payment-{role}-{env}"


def event_bus(env: str) -> str:
    return f"dr-payment-bus-{env}"


def event_rule(role: str, env: str) -> str:
    return f"dr-payment-event-rule-{role}-{env}"


def processor_function(role: str, env: str) -> str:
    return f"dr-payment-processor-{role}-{env}"


def health_function(role: str, env: str) -> str:
    return f"dr-payment-health-{role}-{env}"


def ledger_export_function(role: str, env: str) -> str:
    return f"dr-payment-ledger-export-{role}-{env}"


def schema_migration_function(role: str, env: str) -> str:
    return f"dr-payment-schema-migration-{role}-{env}"


def rotation_function(user: str, role: str, env: str) -> str:
    """The hosted rotation function of a secret (`user`: master | app) in a region's VPC
    (infra-global/secrets-rotation.yaml)."""
    return f"dr-payment-rotate-{user}-{role}-{env}"


def monitor_function(role: str, env: str) -> str:
    return f"dr-payment-replication-monitor-{role}-{env}"


def peer_role(role: str) -> str:
    return ROLES[1 - ROLES.index(role)]


# Replication canaries (the replication monitor). The sessions item's key starts with this (the
# monitor's role may write no other key: template.yaml's dynamodb:LeadingKeys condition); it has
# no processed_at, so `drctl reconcile` (a scan filtered on processed_at) never sees it.
CANARY_KEY_PREFIX = "canary#"
# The documents bucket's canary objects (kept a day once superseded: buckets.yaml lifecycle).
CANARY_OBJECT_PREFIX = "canary/"
# The replication rule of the primary documents bucket (infra-global/buckets.yaml): S3 publishes
# the RTC metrics with it as the RuleId dimension.
DOCUMENTS_REPLICATION_RULE = "documents-to-secondary-region"


def canary_key(origin_region: str) -> str:
    return f"{CANARY_KEY_PREFIX}{origin_region}"


def canary_object(origin_region: str) -> str:
    return f"{CANARY_OBJECT_PREFIX}{origin_region}.json"


_QUEUE_STEMS = {
    Queue.STANDBY: "standby",
    Queue.REJECTED: "rejected",
    Queue.DLQ: "event-dlq",
    Queue.FAILURES: "processor-failures",
}


def queue(purpose: Queue | str, role: str, env: str) -> str:
    return f"dr-payment-{_QUEUE_STEMS[Queue(purpose)]}-{role}-{env}"


def queues(role: str, env: str) -> dict[str, str]:
    """Every regional queue's name by purpose (standby, rejected, dlq, failures)."""
    return {purpose.value: queue(purpose, role, env) for purpose in Queue}


def app_secret(env: str) -> str:
    return f"dr-payment-aurora-app-{env}"


def master_secret(env: str) -> str:
    return f"dr-payment-aurora-master-{env}"


def documents_bucket(role: str, env: str, account: str) -> str:
    return f"dr-payment-docs-{role}-{env}-{account}"


def documents_bucket_pattern(env: str) -> str:
    return f"dr-payment-docs-*-{env}-*"


def parameter(env: str, path: str) -> str:
    """An SSM parameter infra-global publishes (the same path in both regions)."""
    return f"/dr-payment/{env}/{path}"


def writer_endpoint_parameter(env: str) -> str:
    return parameter(env, "aurora/writer-endpoint")


def reader_endpoint_parameter(env: str) -> str:
    """This region's own cluster's reader endpoint (each region publishes its own)."""
    return parameter(env, "aurora/reader-endpoint")


def lambda_security_group_parameter(env: str) -> str:
    return parameter(env, "network/lambda-security-group-id")
