"""Apply the versioned ledger schema (db/migrations/NNNN_*.sql) and the least-privilege
application user. Used by the sandbox and the tests; for a deployed Aurora cluster run it from a
host inside the VPC:

    python -m ops.ledger_schema --host <writer endpoint> --region us-east-1 \\
        --master-secret-id <master secret ARN> --app-secret-id <app secret ARN>
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# The functions may add payments and entries and move a charge's refunded total, and the
# replication monitor may write its heartbeat row (migration 0003): nothing else.
APP_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON `{db}`.`payments` TO '{user}'@'{host}'",
    "GRANT SELECT, INSERT ON `{db}`.`ledger_entries` TO '{user}'@'{host}'",
    "GRANT SELECT, INSERT, UPDATE ON `{db}`.`replication_heartbeat` TO '{user}'@'{host}'",
)


def migrations() -> list[tuple[int, str, str]]:
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name not NNNN_name.sql: {path.name}")
        found.append((int(match.group(1)), path.name, path.read_text()))
    return found


def statements(sql: str) -> list[str]:
    # Our migrations hold plain DDL/DML (no procedures), so ';' at a line end ends a statement.
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    )
    return [
        part.strip() for part in re.split(r";\s*$", without_comments, flags=re.M) if part.strip()
    ]


def apply(conn: Any, database: str, *, up_to: int | None = None) -> list[str]:
    """Create the database if needed and apply pending migrations in order (those numbered up to
    ``up_to`` when given); returns the names."""
    applied = []
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        cur.execute(f"USE `{database}`")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL,"
            " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, name, sql in migrations():
            if version in done or (up_to is not None and version > up_to):
                continue
            for statement in statements(sql):
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
            applied.append(name)
    conn.commit()
    return applied


def ensure_app_user(conn: Any, database: str, user: str, password: str, host: str = "%") -> None:
    """Create (or re-password) the application user with only the grants the functions need."""
    with conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
        for grant in APP_GRANTS:
            cur.execute(grant.format(db=database, user=user, host=host))
    conn.commit()


def _secret(client: Any, secret_id: str) -> dict[str, str]:
    return dict(json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.ledger_schema",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--database", default="payments")
    parser.add_argument("--region", required=True)
    parser.add_argument("--master-secret-id", required=True)
    parser.add_argument("--app-secret-id", required=True)
    parser.add_argument("--no-tls", action="store_true", help="only for a local server")
    args = parser.parse_args(argv)

    import ssl

    import boto3
    import pymysql

    secrets = boto3.client("secretsmanager", region_name=args.region)
    master = _secret(secrets, args.master_secret_id)
    app = _secret(secrets, args.app_secret_id)
    conn = pymysql.connect(
        host=args.host,
        port=args.port,
        user=master["username"],
        password=master["password"],
        ssl=None if args.no_tls else ssl.create_default_context(),
        autocommit=False,
    )
    try:
        names = apply(conn, args.database)
        ensure_app_user(conn, args.database, app["username"], app["password"])
    finally:
        conn.close()
    print(f"applied: {', '.join(names) or 'nothing (up to date)'}; app user {app['username']} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
