-- The operators' incident log (002:13, 000:19, 003:18.4): an incident is
-- opened with what is known, gets notes as it is handled, and is resolved
-- once, with its cause and what fixed it. Nothing is edited or deleted: a
-- correction is a later note. entries is the incident's timeline, seq
-- counting from 1 within it.
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('minor', 'major', 'critical')),
    components  TEXT NOT NULL DEFAULT '[]',
    started_at  TIMESTAMP NOT NULL,
    opened_at   TIMESTAMP NOT NULL,
    opened_by   TEXT NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by TEXT NOT NULL DEFAULT '',
    cause       TEXT NOT NULL DEFAULT '',
    resolution  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incidents_opened ON incidents (opened_at, id);
CREATE TABLE incident_entries (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at          TIMESTAMP NOT NULL,
    by_whom     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'note', 'resolved')),
    body        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
