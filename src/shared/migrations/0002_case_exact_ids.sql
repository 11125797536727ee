-- Ledger schema v2: ids and accounts compare byte for byte, as the event contract says.
--
-- Under 0001 the tables took the server's default collation, which ignores case: MariaDB
-- utf8mb4_general_ci, and Aurora MySQL 3 (MySQL 8.0) utf8mb4_0900_ai_ci, which ignores accents
-- too. Then `Case-Pay-X` and `case-pay-X` were one primary key, a refund of `CASE-PAY-X` found
-- the charge `Case-Pay-X`, and GROUP BY account merged `merchant:ACME` with `merchant:acme`.
-- utf8mb4_bin (compare the code points) exists with the same name and meaning on MariaDB 10.11,
-- MySQL 8.0 and Aurora MySQL 3, so this file is portable. It is a PAD SPACE collation (trailing
-- spaces ignored), which cannot matter: ids and accounts cannot contain spaces.
--
-- Every character column becomes binary (the table default too, so columns added later are),
-- not only the id and account columns: type, currency and region are matched exactly as well.
-- Existing rows keep their bytes (utf8mb4 to utf8mb4 converts nothing); a ledger that already
-- holds two ids differing only in case cannot exist (they were one primary key).
--
-- ledger_entries.payment_id references payments.payment_id and both sides must have the same
-- collation, which MySQL checks on every ALTER: drop the foreign key, convert both tables, add
-- it back. Both conversions rebuild the table (ALGORITHM=COPY on MySQL 8: writes wait while it
-- runs); nothing is deployed yet, and on a large live ledger this would be an online schema
-- change (gh-ost / pt-online-schema-change) or a blue/green deployment instead.

ALTER TABLE ledger_entries DROP FOREIGN KEY fk_entries_payment;

ALTER TABLE payments CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

ALTER TABLE ledger_entries CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

ALTER TABLE ledger_entries
    ADD CONSTRAINT fk_entries_payment FOREIGN KEY (payment_id) REFERENCES payments (payment_id);

-- A new payment type is a migration, not only a code change: the ledger refuses any other.
ALTER TABLE payments
    ADD CONSTRAINT chk_payments_type CHECK (type IN ('CHARGE', 'REFUND'));
