-- Disaster alerts (CAP 1.2 or JSON), one row per message. The same CAP
-- identifier from the same sender is one alert: a repost finds the row.
CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    cap_identifier TEXT NOT NULL,
    sender         TEXT NOT NULL,
    sent           TIMESTAMP NOT NULL,
    msg_type       TEXT NOT NULL,
    refs           TEXT NOT NULL DEFAULT '[]', -- the CAP references, JSON
    status         TEXT NOT NULL,
    priority       TEXT NOT NULL,
    document       TEXT NOT NULL,              -- the parsed alert, JSON
    issuer         TEXT NOT NULL,              -- principal id of the poster
    area_codes     TEXT NOT NULL DEFAULT '[]', -- JSON array: the audience
    channels       TEXT NOT NULL DEFAULT '[]', -- JSON array
    expires_at     TIMESTAMP,
    created_at     TIMESTAMP NOT NULL,
    decided_by     TEXT,
    decided_at     TIMESTAMP,
    reason         TEXT NOT NULL DEFAULT '',
    published_at   TIMESTAMP,
    UNIQUE (sender, cap_identifier)
);
CREATE INDEX alerts_status ON alerts (status, created_at);

-- Which earlier alerts an Update or Cancel refers to, by Loa id.
CREATE TABLE alert_refs (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    ref_id   TEXT NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (alert_id, ref_id)
);
CREATE INDEX alert_refs_ref ON alert_refs (ref_id);
