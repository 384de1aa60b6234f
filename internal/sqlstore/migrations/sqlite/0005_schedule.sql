-- Work that is due later (a scheduled broadcast, an outage reminder): the
-- event to publish and when. Pollers on every dispatcher replica claim
-- due rows without double-claiming and publish them.
CREATE TABLE scheduled_items (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    due_at       TIMESTAMP NOT NULL,
    envelope     TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    created_at   TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX scheduled_items_due ON scheduled_items (due_at) WHERE status = 'pending';
CREATE INDEX scheduled_items_subject ON scheduled_items (subject) WHERE status = 'pending';
