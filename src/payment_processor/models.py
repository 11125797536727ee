"""The public payment event contract (source payment.service, detail-type Payment Transaction).

Other teams publish these events: the rules here are the contract in ARCHITECTURE.md, no looser.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

EVENT_SOURCE = "payment.service"
DETAIL_TYPE = "Payment Transaction"

# ISO 4217 currencies the service settles, with their minor-unit exponent.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "SGD": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
}

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=256)]


class PaymentType(StrEnum):
    CHARGE = "CHARGE"
    REFUND = "REFUND"


class Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: Annotated[str, StringConstraints(pattern=r"^[A-Za-z ]{1,20}$")]
    last4: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]


class PaymentDetail(BaseModel):
    """``detail`` of a payment event, schema_version 1.0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1.0"]
    payment_id: Identifier
    type: PaymentType
    original_payment_id: Identifier | None = None
    merchant_id: Identifier
    customer_id: Identifier
    amount_minor: StrictInt = Field(gt=0)
    currency: str
    occurred_at: AwareDatetime
    card: Card | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=20)

    @field_validator("currency")
    @classmethod
    def _supported_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError("currency is not one the service supports")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _refund_rules(self) -> PaymentDetail:
        if self.type is PaymentType.REFUND and self.original_payment_id is None:
            raise ValueError("original_payment_id is required for a REFUND")
        if self.type is PaymentType.CHARGE and self.original_payment_id is not None:
            raise ValueError("original_payment_id is not allowed for a CHARGE")
        if self.original_payment_id == self.payment_id:
            raise ValueError("a refund cannot refund itself")
        return self

    def payload_hash(self) -> str:
        """Stable digest of the business payload: the same payment delivered again (new
        EventBridge id, same detail) hashes the same; any changed field does not."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class EventEnvelope(BaseModel):
    """The parts of the EventBridge envelope the processor relies on."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = None
    source: Literal["payment.service"]
    detail_type: Literal["Payment Transaction"] = Field(alias="detail-type")
    detail: dict[str, object]
