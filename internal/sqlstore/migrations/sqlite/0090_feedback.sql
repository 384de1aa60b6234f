-- Citizen feedback (producer/feedback): categories (Open311 services) with
-- their default agency and handling time, per-area routes to other
-- agencies, the matters themselves and every step of their handling.
-- Booleans are INTEGER 0/1 in both dialects, so one set of queries serves.
CREATE TABLE feedback_categories (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_en       TEXT NOT NULL DEFAULT '',
    grp           TEXT NOT NULL DEFAULT '',
    agency        TEXT NOT NULL DEFAULT '',
    handling_days INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE feedback_routes (
    category TEXT NOT NULL REFERENCES feedback_categories (code),
    area     TEXT NOT NULL,
    agency   TEXT NOT NULL,
    PRIMARY KEY (category, area)
);

CREATE TABLE feedback (
    id              TEXT PRIMARY KEY,
    category        TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    has_point       INTEGER NOT NULL DEFAULT 0,
    lat             REAL,
    lon             REAL,
    area            TEXT NOT NULL DEFAULT '',
    address         TEXT NOT NULL DEFAULT '',
    citizen_account TEXT NOT NULL DEFAULT '',
    citizen_phone   TEXT NOT NULL DEFAULT '',
    citizen_name    TEXT NOT NULL DEFAULT '',
    public          INTEGER NOT NULL DEFAULT 0,
    photos          TEXT NOT NULL DEFAULT '[]',
    media_url       TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL,
    client_id       TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    agency          TEXT NOT NULL DEFAULT '',
    due_at          TIMESTAMP NOT NULL,
    answer          TEXT NOT NULL DEFAULT '',
    reject_reason   TEXT NOT NULL DEFAULT '',
    note            TEXT NOT NULL DEFAULT '',
    rating          INTEGER NOT NULL DEFAULT 0,
    rating_note     TEXT NOT NULL DEFAULT '',
    rated_at        TIMESTAMP,
    reopened        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    answered_at     TIMESTAMP,
    closed_at       TIMESTAMP
);
CREATE INDEX feedback_created ON feedback (created_at, id);
CREATE INDEX feedback_status ON feedback (status, created_at);
CREATE INDEX feedback_agency ON feedback (agency, status);
CREATE INDEX feedback_citizen ON feedback (citizen_account, created_at);

CREATE TABLE feedback_history (
    feedback_id TEXT NOT NULL REFERENCES feedback (id),
    seq         INTEGER NOT NULL,
    at          TIMESTAMP NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT NOT NULL DEFAULT '',
    to_status   TEXT NOT NULL,
    agency      TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (feedback_id, seq)
);
