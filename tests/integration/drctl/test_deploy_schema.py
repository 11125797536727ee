"""`drctl deploy` migrates the ledger through the active region's SchemaMigrationFunction, right
after that region's stack; `drctl migrate` does it on demand. Against moto (+ the Invoke
emulation in conftest.py) and, where it says so, the real handler on a real MariaDB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.sandbox import resources
from schema_migration.handler import respond
from schema_migration.wiring import build_schema
from shared import config, names, region_control
from shared.adapters import ledger_schema
from shared.region_control import RegionControl
from tests.conftest import MASTER_PASSWORD, MASTER_USER, LambdaContextStub
from tests.integration.drctl.conftest import Harness
from tests.integration.drctl.project import ENV, PRIMARY, SECONDARY

pytestmark = pytest.mark.integration

BUDGET = ("--param", "budget.BudgetEmail=ops@example.com")
DATABASE = "payments_deploy_it"
DEPLOY_APP_USER = "deploy_it_app"
DEPLOY_APP_PASSWORD = "Tst-deploy-app-pw-2291"


def _active(h: Harness, region: str, epoch: int = 5) -> None:
    for where in (PRIMARY, SECONDARY):
        dynamodb = h.client("dynamodb", where)
        resources.create_tables(dynamodb, ENV)
        dynamodb.put_item(
            TableName=names.region_control_table(ENV),
            Item=region_control.to_item(RegionControl(region, epoch, "t", "test")),
        )


def _sequence(h: Harness) -> list[tuple[str, str, str]]:
    """sam deploys and Invokes, in order: (what, region, stack or function)."""
    seen = []
    for call in h.recorder.calls:
        if call.service == "sam":
            seen.append(("sam deploy", call.region, call.params["StackName"]))
        elif call.operation == "Invoke":
            seen.append(("invoke", call.region, call.params["FunctionName"]))
    return seen


def test_the_schema_is_migrated_right_after_the_active_regions_stack(harness: Harness) -> None:
    _active(harness, PRIMARY)

    result = harness.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    assert _sequence(harness) == [
        ("sam deploy", PRIMARY, names.regional_stack("primary", ENV)),
        ("invoke", PRIMARY, names.schema_migration_function("primary", ENV)),
        ("sam deploy", SECONDARY, names.regional_stack("secondary", ENV)),
    ]
    invoke = next(c for c in harness.recorder.calls if c.operation == "Invoke")
    assert invoke.params["InvocationType"] == "RequestResponse"
    assert json.loads(invoke.params["Payload"]) == {"action": "apply"}
    assert "Qualifier" not in invoke.params
    assert "ledger schema: version 3 (database payments)" in result.out
    assert "nothing was pending" in result.out


def test_after_a_failover_the_survivors_function_migrates(harness: Harness) -> None:
    _active(harness, SECONDARY)

    result = harness.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    assert _sequence(harness) == [
        ("sam deploy", PRIMARY, names.regional_stack("primary", ENV)),
        ("sam deploy", SECONDARY, names.regional_stack("secondary", ENV)),
        ("invoke", SECONDARY, names.schema_migration_function("secondary", ENV)),
    ]


def test_a_failed_migration_stops_the_deploy_and_says_what_failed(harness: Harness) -> None:
    _active(harness, PRIMARY)
    harness.schema.handler = lambda _region, _event: {
        "ok": False,
        "action": "apply",
        "error": "0004_x.sql, statement 2 of 2 failed (MySQL error 1146: no such table)",
    }

    result = harness.drctl("deploy", *BUDGET)

    assert result.code == 1
    assert (
        "ledger schema NOT brought up to date by dr-payment-schema-migration-primary-it "
        "(us-east-1): 0004_x.sql, statement 2 of 2 failed (MySQL error 1146" in result.err
    )
    assert [s for s in _sequence(harness) if s[0] == "sam deploy"] == [
        ("sam deploy", PRIMARY, names.regional_stack("primary", ENV))
    ]  # stopped: the rest waits for a re-run
    assert "primary-it" in result.out  # the stacks that did finish are reported


def test_a_function_error_is_reported_with_where_to_look(harness: Harness) -> None:
    _active(harness, PRIMARY)

    def crash(_region: str, _event: Any) -> Any:
        raise RuntimeError("boom")

    harness.schema.handler = crash

    result = harness.drctl("deploy", *BUDGET)

    assert result.code == 1
    assert "Unhandled: RuntimeError: boom" in result.err
    assert "/aws/lambda/dr-payment-schema-migration-primary-it" in result.err


def test_while_fenced_the_deploy_goes_on_and_says_the_schema_was_not_migrated(
    harness: Harness,
) -> None:
    _active(harness, region_control.NO_REGION)

    result = harness.drctl("deploy", *BUDGET)

    assert result.code == 0, result.err
    assert harness.schema.calls == []
    assert "ledger schema NOT migrated: no region is active" in result.out
    assert "drctl migrate --env it" in result.out


def test_only_the_passive_regions_stack_leaves_the_schema_to_drctl_migrate(
    harness: Harness,
) -> None:
    assert harness.drctl("deploy", *BUDGET).code == 0
    _active(harness, PRIMARY)
    harness.recorder.clear()

    result = harness.drctl("deploy", "--only", "sam-secondary")

    assert result.code == 0, result.err
    assert harness.schema.calls == []
    assert "not part of this run; run `drctl migrate --env it`" in result.out


def _regional_stack_exists(h: Harness, role: str, region: str) -> None:
    """FakeSam makes no stack; a deployed regional stack is what a dry run asks the function of."""
    h.client("cloudformation", region).create_stack(
        StackName=names.regional_stack(role, ENV),
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )


def test_a_dry_run_reads_what_is_pending_and_applies_nothing(harness: Harness) -> None:
    assert harness.drctl("deploy", *BUDGET).code == 0
    _active(harness, PRIMARY)
    _regional_stack_exists(harness, "primary", PRIMARY)
    _regional_stack_exists(harness, "secondary", SECONDARY)
    harness.schema.handler = lambda _region, event: {
        "ok": True,
        "action": event["action"],
        "database": "payments",
        "version": 2,
        "pending": ["0003_payments_processed_at_index.sql"],
        "unknown": [],
    }

    result = harness.drctl("deploy", "--dry-run", *BUDGET)

    assert result.code == 0, result.err
    assert [event for _r, _f, event in harness.schema.calls] == [{"action": "status"}]
    assert "pending: 0003_payments_processed_at_index.sql" in result.out
    assert "applied right after this stack" in result.out


def test_a_dry_run_before_the_first_deploy_invokes_nothing(harness: Harness) -> None:
    _active(harness, PRIMARY)

    result = harness.drctl("deploy", "--dry-run", *BUDGET)

    assert result.code == 0, result.err
    assert harness.schema.calls == []


def test_migrate_runs_in_the_active_region_and_its_dry_run_only_reads(harness: Harness) -> None:
    _active(harness, SECONDARY)

    dry = harness.drctl("migrate", "--dry-run")
    applied = harness.drctl("migrate")

    assert (dry.code, applied.code) == (0, 0), (dry.err, applied.err)
    function = names.schema_migration_function("secondary", ENV)
    assert harness.schema.calls == [
        (SECONDARY, function, {"action": "status"}),
        (SECONDARY, function, {"action": "apply"}),
    ]
    assert "nothing pending" in dry.out and "nothing was pending" in applied.out


def test_migrate_without_the_function_says_which_stack_to_deploy(harness: Harness) -> None:
    _active(harness, PRIMARY)
    harness.schema.absent = True  # moto answers: no such function

    result = harness.drctl("migrate")

    assert result.code == 1
    assert "dr-payment-schema-migration-primary-it (us-east-1) does not exist" in result.err
    assert "--only sam-primary" in result.err


def test_migrate_is_refused_while_no_region_is_active(harness: Harness) -> None:
    _active(harness, region_control.NO_REGION)

    result = harness.drctl("migrate")

    assert result.code == 4 and "no region is active" in result.err
    assert harness.schema.calls == []


# -- the real function, in-process, on a real MariaDB ---------------------------------------------


@pytest.fixture
def real_function(harness: Harness, ledger_db: Any) -> Any:
    """SchemaMigrationFunction's handler behind the emulated Invoke, with the master and
    application secrets in moto (the harness's), migrating a database of its own."""
    with ledger_db.root() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cur.execute("DROP USER IF EXISTS %s@'%%'", (DEPLOY_APP_USER,))
    secrets = harness.client("secretsmanager", PRIMARY)
    master = secrets.create_secret(
        Name=names.master_secret(ENV),
        SecretString=json.dumps({"username": MASTER_USER, "password": MASTER_PASSWORD}),
    )["ARN"]
    app = secrets.create_secret(
        Name=names.app_secret(ENV),
        SecretString=json.dumps({"username": DEPLOY_APP_USER, "password": DEPLOY_APP_PASSWORD}),
    )["ARN"]

    def handler(region: str, event: Any) -> Any:
        settings = config.load(
            config.SchemaMigrationSettings,
            {
                "ENVIRONMENT": ENV,
                "REGION_ROLE": "primary",
                "AWS_REGION": region,
                "DB_HOST": "127.0.0.1",
                "DB_PORT": str(ledger_db.port),
                "DB_NAME": DATABASE,
                "DB_SECRET_ID": master,
                "APP_SECRET_ID": app,
                "DB_TLS": "false",
            },
        )
        return respond(
            event, LambdaContextStub(900_000), schema=build_schema(settings), deadline_margin=1
        )

    harness.schema.handler = handler
    yield ledger_db
    with ledger_db.root() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cur.execute("DROP USER IF EXISTS %s@'%%'", (DEPLOY_APP_USER,))


def test_a_first_deploy_gives_a_fresh_ledger_its_schema_and_a_rerun_changes_nothing(
    harness: Harness, real_function: Any
) -> None:
    _active(harness, PRIMARY)
    every = [m.name for m in ledger_schema.migrations()]

    first = harness.drctl("deploy", *BUDGET)

    assert first.code == 0, first.err
    assert f"applied now: {', '.join(every)}" in first.out
    assert f"application user {DEPLOY_APP_USER}: created" in first.out
    with real_function.root(DATABASE) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM schema_migrations WHERE applied_at IS NOT NULL")
        assert sorted(row[0] for row in cur.fetchall()) == every
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (DEPLOY_APP_USER,))
        assert cur.fetchone() == (1,)

    again = harness.drctl("deploy", *BUDGET)

    assert again.code == 0, again.err
    assert "nothing was pending" in again.out
    assert f"application user {DEPLOY_APP_USER}: password and grants ensured" in again.out
