-- Notifications accepted by the API. One row per accepted request; the
-- idempotency key is unique per client so a retried request finds its row.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    lane            TEXT NOT NULL,
    recipient_type  TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    data            TEXT NOT NULL,
    channels        TEXT NOT NULL,
    priority        TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    published_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX notifications_idempotency ON notifications (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX notifications_unpublished ON notifications (created_at) WHERE published_at IS NULL;

-- The delivery ledger: one row per (notification, channel, recipient),
-- folded from loa.receipts.
CREATE TABLE deliveries (
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL,
    class           TEXT NOT NULL DEFAULT '',
    provider        TEXT NOT NULL DEFAULT '',
    provider_id     TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    targets         INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 1,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (notification_id, channel, recipient)
);

-- API keys of integrating systems: only a SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);

-- Accounts and their devices: the minimum the dispatcher needs to resolve
-- an account_id recipient. The accounts domain extends these tables.
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    phone      TEXT,
    email      TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    token       TEXT NOT NULL UNIQUE,
    app         TEXT NOT NULL,
    platform    TEXT NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX devices_account ON devices (account_id) WHERE active;
