-- The ledger's compact entries: the first-attempt push sends a provider
-- accepted (nearly every push of a broadcast), one row per receipt batch
-- instead of one `deliveries` row per push. Each entry stands for n
-- deliveries in status sent, attempt 1, of one notification, channel,
-- provider, class, reason and targets; recipients, provider_ids and ats
-- hold each delivery's address, provider message id and time, in the
-- same order. Every other outcome (failures, retries, later attempts,
-- redeliveries' receipts, carriers' reports) is a `deliveries` row, and
-- the readers merge the two with the ledger's precedence: a recipient's
-- row wins over its compact entry only when it ranks higher than sent
-- (delivered, undelivered). digest is a hash of the entry's content, so
-- a receipt batch folded again (after a restart) is the same entry.
-- SQLite keeps every outcome as a `deliveries` row.
CREATE TABLE deliveries_sent (
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    digest          BYTEA NOT NULL,
    provider        TEXT NOT NULL,
    class           TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    targets         INTEGER NOT NULL,
    n               INTEGER NOT NULL,
    first_at        TIMESTAMPTZ NOT NULL,
    last_at         TIMESTAMPTZ NOT NULL,
    recipients      TEXT[] NOT NULL,
    provider_ids    TEXT[] NOT NULL,
    ats             TIMESTAMPTZ[] NOT NULL,
    PRIMARY KEY (notification_id, channel, digest)
);
-- Device tokens and message ids are random: compressing them costs CPU
-- for little room, so the arrays are stored out of line as they are.
ALTER TABLE deliveries_sent ALTER COLUMN recipients SET STORAGE EXTERNAL,
    ALTER COLUMN provider_ids SET STORAGE EXTERNAL;
