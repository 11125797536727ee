"""The public payment event contract (source payment.service, detail-type Payment Transaction).

Other teams publish these events: the rules here are the contract in ARCHITECTURE.md, no looser,
with what docs/decisions.md ("Ledger correctness (issue 7)") makes precise:

- Ids (payment_id, original_payment_id, merchant_id, customer_id) are compared byte for byte
  everywhere: ``Pay-1`` and ``pay-1`` are two payments (the ledger's id columns are binary).
- No card number anywhere in the event, in any string or number, keys included
  (shared.card_data says what a card number is). An id may not carry a run of 13-19 digits that
  passes the Luhn check however its digit groups are separated (``-``, ``_``): such an event is
  REJECTED (CARD_NUMBER_IN_EVENT) before anything else is read from it.
- ``occurred_at`` is a timestamp with a zone whose UTC instant lies in the years 1000-9999 (what
  the ledger's DATETIME column stores).
- ``metadata: {}`` is the same payload as no metadata, as ``card: null`` is the same as no card:
  both hash alike, so a redelivery that drops an empty map is a DUPLICATE, not a CONFLICT.

Validated with msgspec, not pydantic (docs/decisions.md, "Contract validation"): on the packaged
function, importing pydantic and building its first model costs 0.4-0.6x of `import boto3` by
itself, which alone breaks the cold-start budget (import <= 1.5x boto3); msgspec validates the
same rules (strict types, patterns, bounds, unknown fields) for ~0.02x.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field

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

# msgspec matches patterns with re.search; \A and \Z anchor the whole string (a `$` would also
# accept a trailing newline).
Identifier = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_-]{1,64}\Z")]
MetadataKey = Annotated[str, Meta(min_length=1, max_length=64)]
MetadataValue = Annotated[str, Meta(max_length=256)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=20)]
# What a DATETIME(6) column holds (MySQL/Aurora "supported range"; MariaDB the same).
EARLIEST_OCCURRED_AT = datetime(1000, 1, 1, tzinfo=UTC)
LATEST_OCCURRED_AT = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_OCCURRED_AT_RANGE = "occurred_at: outside the years 1000-9999 (UTC) the ledger can hold"


class InvalidEvent(ValueError):
    """The event breaks the contract. ``reason`` names the field and the rule, never the value
    (a publisher's mistake could put card data anywhere)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentType(StrEnum):
    CHARGE = "CHARGE"
    REFUND = "REFUND"


class Card(Struct, frozen=True, forbid_unknown_fields=True):
    brand: Annotated[str, Meta(pattern=r"\A[A-Za-z ]{1,20}\Z")]
    last4: Annotated[str, Meta(pattern=r"\A[0-9]{4}\Z")]


class PaymentDetail(
    Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """``detail`` of a payment event, schema_version 1.0."""

    schema_version: Literal["1.0"]
    payment_id: Identifier
    type: PaymentType
    original_payment_id: Identifier | None = None
    merchant_id: Identifier
    customer_id: Identifier
    # int in strict mode: 12.0, "12" and true are all refused.
    amount_minor: Annotated[int, Meta(gt=0)]
    currency: str
    occurred_at: Annotated[datetime, Meta(tz=True)]
    card: Card | None = None
    metadata: Metadata | None = None

    def __post_init__(self) -> None:
        # Rules across fields; msgspec turns a ValueError here into its ValidationError.
        if self.currency not in CURRENCY_EXPONENTS:
            raise ValueError("currency: not a currency the service supports")
        if self.type is PaymentType.REFUND and self.original_payment_id is None:
            raise ValueError("original_payment_id: required for a REFUND")
        if self.type is PaymentType.CHARGE and self.original_payment_id is not None:
            raise ValueError("original_payment_id: not allowed for a CHARGE")
        if self.original_payment_id == self.payment_id:
            raise ValueError("original_payment_id: a refund cannot refund itself")
        # One instant, one spelling: stored, projected and hashed in UTC.
        try:
            occurred_at = self.occurred_at.astimezone(UTC)
        except OverflowError:  # year 1 east of UTC, year 9999 west of it
            raise ValueError(_OCCURRED_AT_RANGE) from None
        if not EARLIEST_OCCURRED_AT <= occurred_at <= LATEST_OCCURRED_AT:
            raise ValueError(_OCCURRED_AT_RANGE)
        msgspec.structs.force_setattr(self, "occurred_at", occurred_at)
        if self.metadata is not None and not self.metadata:
            # {} and absent are one payload (as card null and absent are): same hash.
            msgspec.structs.force_setattr(self, "metadata", None)

    @classmethod
    def parse(cls, detail: object) -> PaymentDetail:
        return _convert(detail, cls)

    def payload_hash(self) -> str:
        """Stable digest of the business payload: the same payment delivered again (new
        EventBridge id, same detail) hashes the same; any changed field does not.

        The canonical form is the one stored hashes were made with (pinned by golden values in
        tests/unit/test_models.py): absent optionals omitted (an empty metadata map counts as
        absent), keys sorted, UTC as ``Z``."""
        canonical = json.dumps(msgspec.to_builtins(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class EventEnvelope(Struct, frozen=True, kw_only=True):
    """The parts of the EventBridge envelope the processor relies on (other keys are ignored)."""

    id: str | None = None
    source: Literal["payment.service"]
    detail_type: Literal["Payment Transaction"] = field(name="detail-type")
    detail: dict[str, Any]

    @classmethod
    def parse(cls, event: object) -> EventEnvelope:
        return _convert(event, cls)


def parse_payment(event: object) -> PaymentDetail:
    """The event's payment, or InvalidEvent naming the first rule it breaks (any JSON value is
    answered: a list, a string or null is an invalid event, not an error)."""
    return PaymentDetail.parse(EventEnvelope.parse(event).detail)


def event_age(event: object, now: datetime) -> timedelta | None:
    """How long ago EventBridge says the event happened (its envelope ``time``, RFC 3339 with a
    zone), or None when the time is missing or unreadable. Negative if it lies in the future
    (a publisher may set ``time`` itself)."""
    stamp = event.get("time") if isinstance(event, Mapping) else None
    if not isinstance(stamp, str) or len(stamp) > 64:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
        return None if moment.tzinfo is None else now - moment
    except (ValueError, OverflowError):
        return None


_LOCATION = re.compile(
    r"^(?P<message>.*) - at (?P<key>`key` in )?`\$\.?(?P<path>[^`]*)`$", re.DOTALL
)
_MAX_REASON = 300
# msgspec quotes a rejected enum or literal value; the value is the publisher's, keep it out.
_QUOTED_VALUE = re.compile(r"value '.*'", re.DOTALL)


def _convert[T](data: object, kind: type[T]) -> T:
    try:
        return msgspec.convert(data, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None
    except UnicodeEncodeError:
        # msgspec encodes a string to compare it with a literal or enum value; a lone surrogate
        # (JSON may escape one: "\ud800") is not text it can encode.
        raise InvalidEvent(f"{_not_unicode(data)}: not valid Unicode text") from None


def _not_unicode(data: object) -> str:
    """The first top-level field whose string value cannot be encoded (where literals are)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, str) and isinstance(key, str):
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return key.encode("utf-8", "backslashreplace").decode()[:64]
    return "a text field"


def describe(exc: msgspec.ValidationError) -> str:
    """``field.path: rule`` from msgspec's message, without the rejected value."""
    text = _QUOTED_VALUE.sub("value", str(exc))
    match = _LOCATION.match(text)
    if match is not None:
        path = match["path"] + (" (a key)" if match["key"] else "")
        text = f"{path}: {match['message']}" if path else match["message"]
    # An unknown field's name is the publisher's text: keep the reason short.
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "…"
