"""LedgerExportFunction: invoked by `drctl reconcile` (RequestResponse), never by an event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger_export.service import LedgerRows, export
from ledger_export.wiring import get_rows
from shared.config import get_ledger_export_settings
from shared.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(event)


def respond(
    event: Any, *, rows: LedgerRows | None = None, max_page: int | None = None
) -> dict[str, Any]:
    """The handler without its decorators: tests pass their own reader and page size."""
    if max_page is None:
        max_page = get_ledger_export_settings().export_max_page
    answer = export(event, rows or get_rows(), max_page=max_page)
    if "error" in answer:
        logger.warning("ledger export refused", extra={"reason": answer["error"]})
    else:
        logger.info("ledger export page", extra={"rows": len(answer["records"])})
    return answer
