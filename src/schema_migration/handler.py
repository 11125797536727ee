"""SchemaMigrationFunction: invoked by `drctl deploy` / `drctl migrate` (RequestResponse) in the
active region, never by an event. The only function given the master user's secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schema_migration.service import LedgerSchema, run
from schema_migration.wiring import get_schema
from shared.config import get_schema_migration_settings
from shared.deadline import Deadline
from shared.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(event, context)


def respond(
    event: Any,
    context: Any,
    *,
    schema: LedgerSchema | None = None,
    deadline_margin: float | None = None,
) -> dict[str, Any]:
    """The handler without its decorators: tests pass their own schema adapter."""
    if deadline_margin is None:
        deadline_margin = get_schema_migration_settings().deadline_margin_seconds
    with Deadline.from_context(context, margin=deadline_margin).active():
        answer = run(event, schema or get_schema())
    summary = {k: answer.get(k) for k in ("action", "version", "applied", "pending", "unknown")}
    if answer["ok"]:
        logger.info("ledger schema", extra=summary)
    else:
        logger.error("ledger schema not brought up to date", extra={"reason": answer["error"]})
    return answer
