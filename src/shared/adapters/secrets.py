"""Database credentials from Secrets Manager through Powertools parameters (cached, short max_age,
fetched again on demand after an authentication failure: rotation and failover change them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities import parameters


@dataclass(frozen=True)
class DbCredentials:
    username: str
    password: str = field(repr=False)


class SecretCredentials:
    def __init__(self, secret_id: str, *, max_age: int = 300, provider: Any = None) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._provider = provider
        self._force_next = False

    def _get_provider(self) -> Any:
        if self._provider is None:
            self._provider = parameters.SecretsProvider()
        return self._provider

    def get(self) -> DbCredentials:
        value = self._get_provider().get(
            self._secret_id, transform="json", max_age=self._max_age, force_fetch=self._force_next
        )
        self._force_next = False
        return DbCredentials(username=value["username"], password=value["password"])

    def invalidate(self) -> None:
        """The next get() bypasses the cache."""
        self._force_next = True
