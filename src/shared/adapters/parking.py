"""The parked-events queue: where rejected, conflicting and passive-region events wait, with
their reason, for a human or `drctl redrive`. Card numbers are masked before anything is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import card_data
from shared.errors import DeadlineExceeded, ParkingUnavailable
from shared.records import Outcome


class SqsParkingLot:
    def __init__(
        self,
        client: Any,
        queue_url: str,
        region: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._region = region
        self._clock = clock

    def park(self, event: Any, *, outcome: Outcome, code: str, reason: str) -> None:
        body = {
            "outcome": outcome.value,
            "code": code,
            "reason": reason,
            "parked_at": self._clock().isoformat(),
            "region": self._region,
            "event": card_data.mask(event),
        }
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(body, default=str),
                MessageAttributes={
                    "outcome": {"DataType": "String", "StringValue": outcome.value},
                    "code": {"DataType": "String", "StringValue": code},
                },
            )
        except DeadlineExceeded:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise ParkingUnavailable("could not park the event") from exc
