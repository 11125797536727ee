"""Migration 0002 on a ledger written under 0001: every row reads back byte for byte, ids and
accounts compare exactly from then on, the foreign key and the CHECKs still hold. On MariaDB
(what Aurora MySQL 3 is stood in by; the SQL is portable, see the migration's header)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from shared.adapters import ledger_schema

pytestmark = pytest.mark.integration

DATABASE = "payments_migration_test"
PAYMENTS = [
    # payment_id, type, original, merchant, customer, amount, currency, occurred, processed,
    # region, hash, refunded
    ("Case-Pay-X", "CHARGE", None, "ACME", "Cust-1", 1000, "USD",
     "2026-11-28 09:59:58.123456", "2026-11-28 10:00:00.000001", "us-east-1", "a" * 64, 300),
    ("ref-Case-1", "REFUND", "Case-Pay-X", "ACME", "Cust-1", 300, "USD",
     "2026-11-28 10:01:00", "2026-11-28 10:01:01", "us-east-1", "b" * 64, 0),
    ("pay_01JDZQ3R8M", "CHARGE", None, "merchant-acme", "cust_ß", 5, "JPY",
     "1000-01-01 00:00:00", "9999-12-31 23:59:59.999999", "us-west-2", "c" * 64, 0),
]  # fmt: skip
ENTRIES = [
    ("Case-Pay-X", "merchant:ACME", 1000, "USD"),
    ("Case-Pay-X", "customer:Cust-1", -1000, "USD"),
    ("ref-Case-1", "merchant:ACME", -300, "USD"),
    ("ref-Case-1", "customer:Cust-1", 300, "USD"),
    ("pay_01JDZQ3R8M", "merchant:merchant-acme", 5, "JPY"),
    ("pay_01JDZQ3R8M", "customer:cust_ß", -5, "JPY"),
]


@pytest.fixture
def v1_ledger(mariadb: Any) -> Iterator[Any]:
    """A database at schema version 1, holding payments and entries written under it."""
    with mariadb.root() as conn:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        assert ledger_schema.apply(conn, DATABASE, up_to=1) == ["0001_ledger.sql"]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO payments (payment_id, type, original_payment_id, merchant_id, "
                "customer_id, amount_minor, currency, occurred_at, processed_at, "
                "processed_region, payload_hash, refunded_minor) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                PAYMENTS,
            )
            cur.executemany(
                "INSERT INTO ledger_entries (payment_id, account, amount_minor, currency) "
                "VALUES (%s, %s, %s, %s)",
                ENTRIES,
            )
        conn.commit()
        yield conn
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")


def _read(conn: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{DATABASE}`.payments ORDER BY BINARY payment_id")
        payments = list(cur.fetchall())
        cur.execute(
            f"SELECT payment_id, account, amount_minor, currency FROM `{DATABASE}`.ledger_entries"
            " ORDER BY entry_id"
        )
        return payments, list(cur.fetchall())


def _collations(conn: Any) -> dict[tuple[str, str], str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name IN ('payments', 'ledger_entries') "
            "AND collation_name IS NOT NULL",
            (DATABASE,),
        )
        return {(t, c): collation for t, c, collation in cur.fetchall()}


def test_rows_written_under_0001_read_back_unchanged_after_0002(v1_ledger: Any) -> None:
    before = _read(v1_ledger)
    assert set(_collations(v1_ledger).values()) != {"utf8mb4_bin"}  # the server's default

    assert ledger_schema.apply(v1_ledger, DATABASE, up_to=2) == ["0002_case_exact_ids.sql"]

    assert _read(v1_ledger) == before
    assert before[1] == [tuple(entry) for entry in ENTRIES]
    assert ledger_schema.apply(v1_ledger, DATABASE, up_to=2) == []  # applied once


def test_every_character_column_compares_bytes_after_0002(v1_ledger: Any) -> None:
    ledger_schema.apply(v1_ledger, DATABASE)
    collations = _collations(v1_ledger)

    for column in ("payment_id", "original_payment_id", "merchant_id", "customer_id", "type"):
        assert collations["payments", column] == "utf8mb4_bin"
    for column in ("payment_id", "account", "currency"):
        assert collations["ledger_entries", column] == "utf8mb4_bin"
    assert set(collations.values()) == {"utf8mb4_bin"}
    with v1_ledger.cursor() as cur:
        cur.execute(
            "SELECT table_collation FROM information_schema.tables WHERE table_schema = %s",
            (DATABASE,),
        )
        assert {row[0] for row in cur.fetchall()} >= {"utf8mb4_bin"}


def test_after_0002_ids_and_accounts_differing_in_case_are_distinct(v1_ledger: Any) -> None:
    ledger_schema.apply(v1_ledger, DATABASE)
    with v1_ledger.cursor() as cur:
        cur.execute(
            f"INSERT INTO `{DATABASE}`.payments (payment_id, type, merchant_id, customer_id, "
            "amount_minor, currency, occurred_at, processed_at, processed_region, payload_hash) "
            "VALUES ('case-pay-X', 'CHARGE', 'acme', 'c', 7, 'USD', NOW(), NOW(), 'r', %s)",
            ("d" * 64,),
        )
        cur.execute(f"SELECT payment_id FROM `{DATABASE}`.payments WHERE payment_id = 'CASE-PAY-X'")
        assert cur.fetchall() == ()
        cur.execute(
            f"SELECT COUNT(DISTINCT account) FROM `{DATABASE}`.ledger_entries "
            "WHERE account IN ('merchant:ACME', 'merchant:acme')"
        )
        assert cur.fetchone() == (1,)  # only ACME has entries; acme's would be apart
    v1_ledger.rollback()


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        # the foreign key is back: an entry needs its payment, compared exactly
        (
            "INSERT INTO ledger_entries (payment_id, account, amount_minor, currency) "
            "VALUES ('CASE-PAY-X', 'merchant:ACME', 1, 'USD')",
            1452,
        ),
        # a new payment type is a migration
        (
            "INSERT INTO payments (payment_id, type, merchant_id, customer_id, amount_minor, "
            "currency, occurred_at, processed_at, processed_region, payload_hash) VALUES "
            "('p-new', 'CAPTURE', 'm', 'c', 1, 'USD', NOW(), NOW(), 'r', 'e')",
            4025,
        ),
        # 0001's CHECKs survive the conversion
        ("UPDATE payments SET refunded_minor = 1001 WHERE payment_id = 'Case-Pay-X'", 4025),
    ],
)
def test_constraints_hold_after_0002(v1_ledger: Any, statement: str, code: int) -> None:
    ledger_schema.apply(v1_ledger, DATABASE)
    with v1_ledger.cursor() as cur:
        cur.execute(f"USE `{DATABASE}`")
        with pytest.raises(pymysql.err.MySQLError) as refused:
            cur.execute(statement)
    assert refused.value.args[0] == code
    v1_ledger.rollback()
