"""template.yaml gives the master secret to SchemaMigrationFunction only, and packages the
migrations it applies; there is one set of migration files in the repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ops.sandbox.resources import REGIONAL_TEMPLATE, load_template
from shared.adapters import ledger_schema
from tests.conftest import ROOT

MASTER = "DbMasterSecretArn"
APP = "DbAppSecretArn"


def _resources() -> dict[str, Any]:
    return dict(load_template(REGIONAL_TEMPLATE)["Resources"])


def _mentions(value: Any, name: str) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") == name:
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and "${" + name + "}" in sub:
            return True
        return any(_mentions(v, name) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, name) for v in value)
    return False


def _secret_policies(properties: dict[str, Any]) -> list[Any]:
    return [
        policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
        for policy in properties.get("Policies", [])
        if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy
    ]


def test_only_the_schema_migration_function_can_read_the_master_secret() -> None:
    holders = {logical for logical, resource in _resources().items() if _mentions(resource, MASTER)}

    assert holders == {"SchemaMigrationFunction"}
    functions = {
        logical: resource["Properties"]
        for logical, resource in _resources().items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    for logical, properties in functions.items():
        variables = properties["Environment"]["Variables"]
        if logical == "SchemaMigrationFunction":
            assert variables["DB_SECRET_ID"] == {"Ref": MASTER}
            assert variables["APP_SECRET_ID"] == {"Ref": APP}
            assert _secret_policies(properties) == [{"Ref": MASTER}, {"Ref": APP}]
        else:
            assert variables.get("DB_SECRET_ID") in (None, {"Ref": APP}), logical
            assert _secret_policies(properties) in ([], [{"Ref": APP}]), logical


def test_the_schema_migration_function_runs_once_at_a_time_and_only_when_asked() -> None:
    properties = _resources()["SchemaMigrationFunction"]["Properties"]

    assert properties["ReservedConcurrentExecutions"] == 1
    assert "Events" not in properties and "FunctionUrlConfig" not in properties
    assert properties["Timeout"] == 900  # Lambda's limit: an index on a big table takes minutes
    assert properties["Handler"] == "schema_migration.handler.lambda_handler"


def test_the_migrations_are_packaged_with_the_code_and_nowhere_else() -> None:
    template = load_template(REGIONAL_TEMPLATE)
    code_root = ROOT / template["Globals"]["Function"]["CodeUri"]
    packaged = ledger_schema.MIGRATIONS

    assert packaged.is_relative_to(code_root.resolve())
    assert [m.name for m in ledger_schema.migrations()] == sorted(
        p.name for p in packaged.glob("*.sql")
    )
    # A second set (a branch that added db/migrations/NNNN_*.sql again) would never be applied.
    others = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]  # venvs, builds, git
        others += [Path(folder, f) for f in files if f.endswith(".sql")]
    strays = [str(p.relative_to(ROOT)) for p in others if not p.is_relative_to(packaged)]
    assert strays == [], f"SQL outside {packaged.relative_to(ROOT)}: move it there"


def test_migration_versions_are_unique_and_start_at_one() -> None:
    versions = [m.version for m in ledger_schema.migrations()]

    assert versions == list(range(1, len(versions) + 1))
    assert all(Path(m.name).suffix == ".sql" and m.statements() for m in ledger_schema.migrations())
