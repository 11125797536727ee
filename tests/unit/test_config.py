"""Settings: read from the environment the template declares, text converted, bounds checked."""

from __future__ import annotations

import pytest

from ops.sandbox import functions
from shared import config
from shared.config import HealthSettings, ProcessorSettings

PROCESSOR_ENV = {
    "ENVIRONMENT": "dev",
    "REGION_ROLE": "secondary",
    "AWS_DEFAULT_REGION": "us-west-2",
    "REGION_CONTROL_TABLE": "dr-payment-region-control-dev",
    "DB_HOST": "writer.example",
    "DB_SECRET_ID": "arn:aws:secretsmanager:us-west-2:123456789012:secret:app",
    "SESSIONS_TABLE": "dr-payment-sessions-dev",
    "STANDBY_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/standby",
    "REJECTED_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/rejected",
}


def test_text_is_converted_and_defaults_apply() -> None:
    settings = config.load(
        ProcessorSettings,
        {**PROCESSOR_ENV, "DB_PORT": "3307", "DB_TLS": "false", "DEADLINE_MARGIN_SECONDS": "1.5"},
    )
    assert (settings.db_port, settings.db_tls, settings.deadline_margin_seconds) == (
        3307,
        False,
        1.5,
    )
    assert (settings.db_name, settings.max_amount_minor, settings.db_tls_ca_file) == (
        "payments",
        100_000_000,
        None,
    )
    # Lambda sets AWS_REGION; without it AWS_DEFAULT_REGION is used.
    assert settings.aws_region == "us-west-2"
    assert config.load(
        ProcessorSettings, {**PROCESSOR_ENV, "AWS_REGION": "eu-west-1"}
    ).aws_region == ("eu-west-1")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"DB_PORT": "not-a-port"}, "DB_PORT"),
        ({"REGION_ROLE": "tertiary"}, "REGION_ROLE"),
        ({"MAX_AMOUNT_MINOR": "0"}, "MAX_AMOUNT_MINOR"),
        ({"REGION_GATE_CACHE_SECONDS": "-1"}, "REGION_GATE_CACHE_SECONDS"),
        ({"SESSIONS_TABLE": None}, "SESSIONS_TABLE"),
    ],
)
def test_a_bad_environment_names_the_variable(changes: dict[str, str | None], named: str) -> None:
    env = {k: v for k, v in {**PROCESSOR_ENV, **changes}.items() if v is not None}
    with pytest.raises(config.SettingsError, match=named):
        config.load(ProcessorSettings, env)


@pytest.mark.parametrize(
    ("logical_id", "kind"),
    [
        ("PaymentProcessorFunction", ProcessorSettings),
        ("HealthFunction", HealthSettings),
        ("SchemaMigrationFunction", config.SchemaMigrationSettings),
    ],
)
def test_the_template_gives_each_function_every_setting_it_requires(
    logical_id: str, kind: type[config.FunctionSettings]
) -> None:
    declared = set(functions.function(logical_id).declared_environment())
    required = config.environment_names(kind, required_only=True)
    assert {"ENVIRONMENT", "DB_SECRET_ID"} <= required
    assert required - {"AWS_REGION"} <= declared  # Lambda itself sets AWS_REGION
    # And every optional one the template sets is one the code reads (no dead or misspelt names).
    ours = {
        name
        for name in declared
        if name.startswith(("DB_", "HEALTH_", "REGION_", "MAX_", "REFUND_", "APP_", "MIGRATION_"))
    }
    assert ours <= config.environment_names(kind)
