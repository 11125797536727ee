-- Ledger schema v1: the system of record for payments (Aurora MySQL 3 / MySQL 8.0; tested on
-- MariaDB 10.11). Portable SQL only. Applied in order by shared/adapters/ledger_schema.py
-- (SchemaMigrationFunction in AWS, the sandbox and the tests), which records each version in
-- schema_migrations.

CREATE TABLE IF NOT EXISTS payments (
    payment_id          VARCHAR(64)  NOT NULL,
    type                VARCHAR(8)   NOT NULL,
    original_payment_id VARCHAR(64)  NULL,
    merchant_id         VARCHAR(64)  NOT NULL,
    customer_id         VARCHAR(64)  NOT NULL,
    amount_minor        BIGINT       NOT NULL,
    currency            CHAR(3)      NOT NULL,
    occurred_at         DATETIME(6)  NOT NULL,
    processed_at        DATETIME(6)  NOT NULL,
    processed_region    VARCHAR(32)  NOT NULL,
    payload_hash        CHAR(64)     NOT NULL,
    -- running total of accepted refunds against this charge (0 for refunds); changed only
    -- while the row is locked FOR UPDATE, so it never passes amount_minor
    refunded_minor      BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (payment_id),
    KEY idx_payments_original (original_payment_id),
    CONSTRAINT chk_payments_amount CHECK (amount_minor > 0),
    CONSTRAINT chk_payments_refunded CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS ledger_entries (
    entry_id     BIGINT       NOT NULL AUTO_INCREMENT,
    payment_id   VARCHAR(64)  NOT NULL,
    account      VARCHAR(80)  NOT NULL,
    amount_minor BIGINT       NOT NULL,
    currency     CHAR(3)      NOT NULL,
    PRIMARY KEY (entry_id),
    KEY idx_entries_payment (payment_id),
    CONSTRAINT fk_entries_payment FOREIGN KEY (payment_id) REFERENCES payments (payment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
