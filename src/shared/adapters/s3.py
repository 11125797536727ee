"""S3 adapters: the documents bucket of this region, and its replication canary."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import DeadlineExceeded, DocumentsUnavailable, MonitoringUnavailable
from shared.names import canary_object


class S3DocumentsBucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def head(self) -> None:
        """HeadBucket (needs s3:ListBucket): the bucket exists and this role can reach it."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise DocumentsUnavailable(f"documents bucket answered {code}") from exc
        except BotoCoreError as exc:
            reason = type(exc).__name__
            raise DocumentsUnavailable(f"documents bucket unreachable: {reason}") from exc


class S3Canary:
    """The replication canary object of a documents bucket: written in the active region's
    bucket (`canary/<origin region>.json`), read in each region's own bucket (the replica)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def beat(self, origin_region: str, written_at: float) -> None:
        body = json.dumps({"origin_region": origin_region, "written_at": round(written_at, 3)})
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=canary_object(origin_region),
                Body=body.encode(),
                ContentType="application/json",
            )
        except DeadlineExceeded:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise MonitoringUnavailable(f"canary not written: {_reason(exc)}") from exc

    def written_at(self, origin_region: str) -> float | None:
        """When the canary this bucket holds was written; None when it holds none."""
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=canary_object(origin_region))[
                "Body"
            ].read()
        except DeadlineExceeded:
            raise
        except ClientError as exc:
            if _reason(exc) in ("NoSuchKey", "404"):
                return None
            raise MonitoringUnavailable(f"canary unreadable: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise MonitoringUnavailable(f"canary unreadable: {_reason(exc)}") from exc
        try:
            return float(json.loads(body)["written_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MonitoringUnavailable("canary object malformed") from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__
