-- CAP semantics: who an alert is for (distribution and audience beyond
-- areas), the chain it belongs to (the key that collapses its Updates and
-- its Cancel into one notification on the phone), what could not be
-- matched, and references to alerts not received yet.
ALTER TABLE alerts ADD COLUMN distribution TEXT NOT NULL DEFAULT 'public';
ALTER TABLE alerts ADD COLUMN chain_key TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN audience TEXT NOT NULL DEFAULT '{}'; -- JSON: roles, accounts, app
ALTER TABLE alerts ADD COLUMN notes TEXT NOT NULL DEFAULT '{}';    -- JSON: unmatched areas, addresses, references

-- References of an Update or Cancel to alerts Loa has not seen (yet): the
-- referenced alert is linked when it arrives.
CREATE TABLE alert_pending_refs (
    alert_id       TEXT NOT NULL REFERENCES alerts (id),
    ref_sender     TEXT NOT NULL,
    ref_identifier TEXT NOT NULL,
    PRIMARY KEY (alert_id, ref_sender, ref_identifier)
);
CREATE INDEX alert_pending_refs_ref ON alert_pending_refs (ref_sender, ref_identifier);
