"""S3 adapters: the documents bucket of this region."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import DocumentsUnavailable


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
