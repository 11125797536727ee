"""Where set-aside events wait, with their reason: the STANDBY queue (valid events a passive or
read-only region could not write: `drctl` redrives them after promotion) and the REJECTED queue
(invalid or conflicting events, for a person). shared/parked.py decides which, by outcome.
Card numbers are masked before anything is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import card_data, parked
from shared.errors import DeadlineExceeded, ParkingUnavailable
from shared.names import Queue
from shared.records import Outcome


class SqsParkingLot:
    def __init__(
        self,
        client: Any,
        *,
        standby_queue_url: str,
        rejected_queue_url: str,
        region: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._queue_urls = {Queue.STANDBY: standby_queue_url, Queue.REJECTED: rejected_queue_url}
        self._region = region
        self._clock = clock

    def park(self, event: Any, *, outcome: Outcome, code: str, reason: str) -> None:
        body = parked.message(
            card_data.mask(event),
            outcome=outcome.value,
            code=code,
            reason=reason,
            parked_at=self._clock().isoformat(),
            region=self._region,
        )
        try:
            self._client.send_message(
                QueueUrl=self._queue_urls[parked.queue_for(outcome.value)],
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
