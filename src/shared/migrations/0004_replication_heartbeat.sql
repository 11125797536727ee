-- Ledger schema v4: the replication heartbeat (issue 8), not part of the payments ledger.
--
-- The active region's replication monitor upserts its region's row every minute on the writer
-- (a new token each time, written_at from the writer's clock); the other region's monitor waits
-- for that token on its reader to measure the end-to-end lag, and each region's health check
-- reads the age of the newest row on its own reader (how far behind its copy is). One row per
-- region that has written one: the table never grows. The application user may SELECT, INSERT
-- and UPDATE it (shared/adapters/ledger_schema.py APP_GRANTS), nothing else.

CREATE TABLE IF NOT EXISTS replication_heartbeat (
    origin_region VARCHAR(32) NOT NULL,
    token         CHAR(32)    NOT NULL,
    written_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (origin_region)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
