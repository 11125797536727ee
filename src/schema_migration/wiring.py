"""Composition root: the schema adapter as the master user, built once per execution
environment, on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from shared.adapters import aws
from shared.adapters.ledger_schema import MySQLLedgerSchema
from shared.adapters.mysql import MySQLConnector
from shared.adapters.secrets import SecretCredentials
from shared.config import SchemaMigrationSettings, get_schema_migration_settings

# A migration statement may run for as long as the invocation has left (an index on a large
# table takes minutes); the Deadline, not this, is what bounds it.
STATEMENT_TIMEOUT_SECONDS = 900.0


def build_schema(settings: SchemaMigrationSettings, **options: Any) -> MySQLLedgerSchema:
    """``options`` go to MySQLLedgerSchema (tests: other migrations, shorter limits)."""
    provider = SecretsProvider(boto3_client=aws.client("secretsmanager", settings.aws_region))
    master = MySQLConnector(
        host=settings.db_host,
        port=settings.db_port,
        database=None,  # the migration creates it where the cluster has none yet
        credentials=SecretCredentials(
            settings.db_secret_id, max_age=settings.secret_max_age_seconds, provider=provider
        ),
        tls=settings.db_tls,
        tls_ca_file=settings.db_tls_ca_file,
        io_timeout=STATEMENT_TIMEOUT_SECONDS,
    )
    return MySQLLedgerSchema(
        master,
        database=settings.db_name,
        # max_age 0: the password the user is given is the secret's value now
        app_credentials=SecretCredentials(settings.app_secret_id, max_age=0, provider=provider),
        **{"ddl_lock_wait": settings.migration_lock_wait_seconds, **options},
    )


@lru_cache(maxsize=1)
def get_schema() -> MySQLLedgerSchema:
    return build_schema(get_schema_migration_settings())
