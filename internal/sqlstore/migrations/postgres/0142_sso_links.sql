-- An official's single sign-on identity: the issuer and subject of the ID
-- token that first signed them in. Later sign-ins match by them; a user
-- name match never moves an account to another subject. One identity an
-- account, one account an identity. Accounts signed in by SSO before this
-- migration are linked at their next SSO sign-in (docs/api.md, "Single
-- sign-on").
CREATE TABLE sso_links (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    linked_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX sso_links_account ON sso_links (account_id);
