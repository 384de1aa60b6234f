-- Acknowledgements of alerts by the people who received them, per alert
-- chain (an alert, its Updates and its Cancel) and account: an ack on any
-- device of the account, or with its session, counts for all of them.
-- An escalation sends SMS only to the phones of accounts without one.
CREATE TABLE alert_acks (
    chain      TEXT NOT NULL, -- the sender and the chain key of the acknowledged alert
    account_id TEXT NOT NULL REFERENCES accounts (id),
    alert_id   TEXT NOT NULL, -- the message of the chain that was acknowledged
    via        TEXT NOT NULL, -- session | device
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain, account_id)
);
