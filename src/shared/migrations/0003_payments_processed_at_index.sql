-- Ledger schema v3: payments can be read by when they were processed.
--
-- `drctl reconcile` pages through the payments processed since a moment, through
-- LedgerExportFunction (shared/adapters/ledger.py payments_since: processed_at >= T, keyset on
-- payment_id). Without an index every page scans the whole table. An InnoDB secondary index
-- ends with the primary key, so this one is (processed_at, payment_id) in effect: the range on
-- processed_at is read from it and the payment_id bound is checked there too.
--
-- ALGORITHM=INPLACE, LOCK=NONE: payments stay writable while the index is built (MySQL 8.0 /
-- Aurora MySQL 3 and MariaDB 10.11 both add a secondary index online); a server that could not
-- do it that way refuses the statement rather than lock the table. One statement, so it either
-- took effect or not: a run stopped here starts it again cleanly.

ALTER TABLE payments ADD INDEX idx_payments_processed_at (processed_at), ALGORITHM=INPLACE, LOCK=NONE;
