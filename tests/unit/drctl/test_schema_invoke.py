"""drctl's call to SchemaMigrationFunction, against botocore's Stubber: the exact Invoke, and
what the operator reads when it cannot run or fails."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from botocore.response import StreamingBody

from ops.drctl import schema
from ops.drctl.errors import DrctlError
from tests.unit.drctl.stubs import stubbed_context

REGION = "us-west-2"
FUNCTION = "dr-payment-schema-migration-secondary-dev"


def _body(payload: Any) -> StreamingBody:
    data = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def _expected(action: str) -> dict[str, Any]:
    return {
        "FunctionName": FUNCTION,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps({"action": action}).encode(),
    }


def test_one_synchronous_invoke_of_the_target_regions_function() -> None:
    ctx, factory, _err = stubbed_context()
    answer = {
        "ok": True,
        "action": "apply",
        "database": "payments",
        "version": 3,
        "applied": ["0003_payments_processed_at_index.sql"],
        "pending": [],
        "unknown": ["0004_from_a_newer_release.sql"],
        "app_user": "payment_app",
        "app_user_created": False,
    }
    factory.stub("lambda", REGION).add_response(
        "invoke", {"StatusCode": 200, "Payload": _body(answer)}, _expected("apply")
    )

    lines = schema.migrate(ctx, schema.Target("secondary", REGION))

    factory.assert_no_pending()
    assert lines == [
        "ledger schema: version 3 (database payments)",
        "applied now: 0003_payments_processed_at_index.sql",
        "application user payment_app: password and grants ensured",
        "applied by a newer release than this one: 0004_from_a_newer_release.sql (do not roll "
        "the code back past it)",
    ]


def test_a_dry_run_asks_for_the_status_only() -> None:
    ctx, factory, _err = stubbed_context()
    answer = {"ok": True, "action": "status", "database": "payments", "version": 2,
              "pending": ["0003_payments_processed_at_index.sql"], "unknown": []}  # fmt: skip
    factory.stub("lambda", REGION).add_response(
        "invoke", {"StatusCode": 200, "Payload": _body(answer)}, _expected("status")
    )

    lines = schema.migrate(ctx, schema.Target("secondary", REGION), dry_run=True)

    assert lines[1] == "pending: 0003_payments_processed_at_index.sql"


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("TooManyRequestsException", "is already running (one migration at a time)"),
        ("ResourceNotFoundException", "does not exist: deploy the regional stack"),
    ],
)
def test_a_refused_invoke_says_what_to_do(code: str, says: str) -> None:
    ctx, factory, _err = stubbed_context()
    factory.stub("lambda", REGION).add_client_error("invoke", service_error_code=code)

    with pytest.raises(DrctlError, match=re.escape(says)):
        schema.migrate(ctx, schema.Target("secondary", REGION))


def test_a_failed_migration_is_an_error_with_the_functions_reason() -> None:
    ctx, factory, _err = stubbed_context()
    answer = {"ok": False, "action": "apply", "error": "the database is read-only (MySQL 1290)"}
    factory.stub("lambda", REGION).add_response(
        "invoke", {"StatusCode": 200, "Payload": _body(answer)}, _expected("apply")
    )

    with pytest.raises(DrctlError) as failed:
        schema.migrate(ctx, schema.Target("secondary", REGION))

    assert str(failed.value) == (
        f"ledger schema NOT brought up to date by {FUNCTION} ({REGION}): the database is "
        "read-only (MySQL 1290)"
    )


def test_a_timed_out_function_points_at_its_log_group() -> None:
    ctx, factory, _err = stubbed_context()
    crash = {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 900.00 seconds"}
    factory.stub("lambda", REGION).add_response(
        "invoke",
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _body(crash)},
        _expected("apply"),
    )

    with pytest.raises(DrctlError, match="Task timed out after 900.00 seconds") as failed:
        schema.migrate(ctx, schema.Target("secondary", REGION))

    assert f"/aws/lambda/{FUNCTION}" in str(failed.value)
