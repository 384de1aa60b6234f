-- Power-outage schedules posted by the power company (issue 5), one row
-- per (client, outage id): the current version of its content and the
-- hash that tells a repost from a change. notified is set once the
-- version's notices are scheduled or sent, so a post interrupted half-way
-- is finished by the next post of the same content.
CREATE TABLE outages (
    client     TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    areas      TEXT NOT NULL,
    location   TEXT NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    cancelled  BOOLEAN NOT NULL DEFAULT FALSE,
    notified   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client, id)
);

-- The notices of each outage version: reminders (scheduled items with the
-- same id), change and cancellation notices, and reminders skipped.
CREATE TABLE outage_notices (
    id           TEXT PRIMARY KEY,
    client       TEXT NOT NULL,
    outage_id    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    lead_seconds BIGINT NOT NULL DEFAULT 0,
    due_at       TIMESTAMPTZ NOT NULL,
    status       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX outage_notices_outage ON outage_notices (client, outage_id, version);
