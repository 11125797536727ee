"""Names fixed by the contract (notes/contract.md): every one carries the environment."""

from __future__ import annotations


def sessions_table(env: str) -> str:
    return f"dr-payment-sessions-{env}"


def region_control_table(env: str) -> str:
    return f"dr-payment-region-control-{env}"


def tables(env: str) -> list[str]:
    return [sessions_table(env), region_control_table(env)]


def documents_bucket(role: str, env: str, account: str) -> str:
    return f"dr-payment-docs-{role}-{env}-{account}"


def documents_bucket_pattern(env: str) -> str:
    return f"dr-payment-docs-*-{env}-*"


def global_cluster(env: str) -> str:
    return f"dr-payment-global-{env}"


def event_bus(env: str) -> str:
    return f"dr-payment-bus-{env}"


def event_rule(role: str, env: str) -> str:
    return f"dr-payment-event-rule-{role}-{env}"


def processor_function(role: str, env: str) -> str:
    return f"dr-payment-processor-{role}-{env}"


def lambda_security_group_parameter(env: str) -> str:
    return f"/dr-payment/{env}/network/lambda-security-group-id"


def writer_endpoint_parameter(env: str) -> str:
    return f"/dr-payment/{env}/aurora/writer-endpoint"


CONTROL_ITEM_KEY = "active-region"
FENCED = "none"
