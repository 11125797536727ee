"""Bring the ledger's schema up to date, or say where it stands: what SchemaMigrationFunction
does when `drctl deploy` (or `drctl migrate`) invokes it.

The answer is always JSON drctl can print: {"ok": true, ...} with the version, what was applied
now and what is pending, or {"ok": false, "error": ...} saying what failed and what to do. A
failure the function cannot explain (a bug) raises, and Lambda reports it as a function error.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec
from msgspec import Struct

from shared.adapters.ledger_schema import Migrated, SchemaState
from shared.errors import DeadlineExceeded, LedgerUnavailable, SchemaMigrationError


class SchemaRequest(Struct, frozen=True, forbid_unknown_fields=True):
    # apply: pending migrations and the application user; status: read only (drctl's dry runs)
    action: Literal["apply", "status"] = "apply"


class LedgerSchema(Protocol):
    def state(self) -> SchemaState: ...

    def migrate(self) -> Migrated: ...


def _describe(state: SchemaState) -> dict[str, Any]:
    return {
        "database": state.database,
        "version": state.version,
        "pending": [m.name for m in state.pending],
        # applied by a newer release than this code: never roll the code back past it
        "unknown": state.unknown,
    }


def run(event: Any, schema: LedgerSchema) -> dict[str, Any]:
    try:
        request = msgspec.convert(event if event is not None else {}, SchemaRequest)
    except msgspec.ValidationError as exc:
        return {"ok": False, "error": f"invalid request: {exc}"}
    try:
        if request.action == "status":
            return {"ok": True, "action": "status", **_describe(schema.state())}
        migrated = schema.migrate()
    except (SchemaMigrationError, LedgerUnavailable, DeadlineExceeded) as exc:
        return {"ok": False, "action": request.action, "error": str(exc)}
    return {
        "ok": True,
        "action": "apply",
        **_describe(migrated.state),
        "applied": migrated.applied,
        "app_user": migrated.app_user,
        "app_user_created": migrated.app_user_created,
    }
