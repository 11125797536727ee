"""PaymentProcessorFunction: EventBridge → validate → region gate → ledger → sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from payment_processor.service import PaymentService
from payment_processor.wiring import get_service
from shared.config import get_processor_settings
from shared.deadline import Deadline
from shared.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


# No correlation_id_path: Powertools would copy the raw detail.payment_id into every log line,
# card number and all. The service sets it from the masked, then the validated, payment_id.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return process(event, context)


def process(
    event: Any,
    context: Any,
    *,
    service: PaymentService | None = None,
    deadline_margin: float | None = None,
) -> dict[str, Any]:
    """The handler without its decorators: tests and the sandbox pass their own service."""
    if service is None:
        service = get_service()
    if deadline_margin is None:
        deadline_margin = get_processor_settings().deadline_margin_seconds
    with Deadline.from_context(context, margin=deadline_margin).active():
        return service.handle(event).as_response()
