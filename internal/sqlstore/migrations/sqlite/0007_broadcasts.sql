-- Broadcast requests (issue 5): an agency official's notice, approved by
-- another official before anything is sent (four eyes). Status moves only
-- by compare-and-set; every move is a row of broadcast_history.
CREATE TABLE broadcasts (
    id           TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    title_en     TEXT NOT NULL DEFAULT '',
    body_en      TEXT NOT NULL DEFAULT '',
    topic        TEXT NOT NULL,
    audience     TEXT NOT NULL,
    channels     TEXT NOT NULL,
    send_at      TIMESTAMP,
    doc_number   TEXT NOT NULL,
    doc_date     TEXT NOT NULL,
    unit         TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT '',
    decided_by   TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX broadcasts_status ON broadcasts (status, created_at);

CREATE TABLE broadcast_history (
    broadcast_id TEXT NOT NULL REFERENCES broadcasts (id),
    seq          INTEGER NOT NULL,
    at           TIMESTAMP NOT NULL,
    actor        TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (broadcast_id, seq)
);
