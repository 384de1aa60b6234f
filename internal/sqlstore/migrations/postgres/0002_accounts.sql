-- Accounts (issue 3): citizens, organisations and officials, their
-- passwords, roles, second factors, subscriptions, and the audit log.

ALTER TABLE accounts ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN citizen_id TEXT;
ALTER TABLE accounts ADD COLUMN tax_code TEXT;
ALTER TABLE accounts ADD COLUMN username TEXT;
ALTER TABLE accounts ADD COLUMN unit TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN password_changed_at TIMESTAMPTZ;
ALTER TABLE accounts ADD COLUMN phone_verified_at TIMESTAMPTZ;
ALTER TABLE accounts ADD COLUMN closed_at TIMESTAMPTZ;
-- One account per citizen ID, per tax code and per user name.
CREATE UNIQUE INDEX accounts_citizen_id ON accounts (citizen_id) WHERE citizen_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_tax_code ON accounts (tax_code) WHERE tax_code IS NOT NULL;
CREATE UNIQUE INDEX accounts_username ON accounts (username) WHERE username IS NOT NULL;
-- One verified account per phone; pending registrations may share one.
CREATE UNIQUE INDEX accounts_verified_phone ON accounts (phone) WHERE phone_verified_at IS NOT NULL;

-- Earlier password hashes, newest first by set_at, for the reuse rule.
CREATE TABLE password_history (
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    password_hash TEXT NOT NULL,
    set_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX password_history_account ON password_history (account_id, set_at);

-- Officials' roles, per administrative unit.
CREATE TABLE role_grants (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    unit       TEXT NOT NULL,
    role       TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, unit, role)
);

-- TOTP factors: the secret sealed with AES-256-GCM; last_step is the last
-- accepted RFC 6238 time step (replay refusal).
CREATE TABLE totp_factors (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    secret_sealed TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    last_step     BIGINT,
    created_at    TIMESTAMPTZ NOT NULL,
    activated_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX totp_factors_one_active ON totp_factors (account_id) WHERE status = 'active';

-- Recovery codes, stored as keyed hashes; used_at makes them single use.
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX recovery_codes_account ON recovery_codes (account_id) WHERE used_at IS NULL;

-- Administrative areas (a tree of unit codes; the real data is loaded by
-- another tool).
CREATE TABLE areas (
    code   TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    parent TEXT,
    level  TEXT NOT NULL DEFAULT '',
    lat    DOUBLE PRECISION,
    lon    DOUBLE PRECISION
);
CREATE INDEX areas_parent ON areas (parent);

CREATE TABLE subscriptions (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE subscription_areas (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    area_code  TEXT NOT NULL REFERENCES areas (code),
    PRIMARY KEY (account_id, area_code)
);
CREATE INDEX subscription_areas_area ON subscription_areas (area_code);
CREATE TABLE subscription_topics (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    topic      TEXT NOT NULL,
    PRIMARY KEY (account_id, topic)
);
CREATE INDEX subscription_topics_topic ON subscription_topics (topic);

-- Append-only audit log: rows are inserted, never updated or deleted.
CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '{}',
    ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_at ON audit_log (at);
