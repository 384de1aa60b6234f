-- Delivery reports that arrived before the send they are about was
-- recorded in the ledger (a gateway answering faster than the receipts
-- are folded in, or the ledger behind). They are kept here until the
-- delivery is recorded and the report is applied, or until they have
-- waited longer than the dispatcher's bound (LOA_DELIVERY_REPORT_HOLD).
CREATE TABLE held_reports (
    provider    TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, provider_id, status)
);
CREATE INDEX held_reports_received ON held_reports (received_at);
