-- Progress of the planner through an audience, per notification and
-- channel: the last key it published a batch for, so a plan interrupted by
-- a crash resumes there instead of starting over.
CREATE TABLE plans (
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    last_key        TEXT NOT NULL DEFAULT '',
    batches         INTEGER NOT NULL DEFAULT 0,
    targeted        BIGINT NOT NULL DEFAULT 0,
    done            BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX devices_app_id ON devices (app, id) WHERE active;
