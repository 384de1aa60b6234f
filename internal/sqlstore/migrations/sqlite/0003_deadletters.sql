-- Dead letters folded from loa.deadletter, for operators to list and
-- replay. The topic stays the record; this table is its index.
CREATE TABLE dead_letters (
    id           TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset BIGINT NOT NULL,
    kafka_key    TEXT NOT NULL DEFAULT '',
    envelope     TEXT,
    raw          TEXT,
    channel      TEXT NOT NULL DEFAULT '',
    recipient    TEXT NOT NULL DEFAULT '',
    provider     TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    history      TEXT NOT NULL DEFAULT '[]',
    at           TIMESTAMP NOT NULL,
    replayed_at  TIMESTAMP,
    replayed_by  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_at ON dead_letters (at, id);
