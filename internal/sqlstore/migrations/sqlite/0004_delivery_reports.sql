-- A gateway's delivery report names a delivery by the gateway's own
-- message id (eSMS SMSID, SpeedSMS tranId, a webhook's id); this finds the
-- ledger row for it. Rows without a provider id (sandbox, failures) are
-- left out of the index.
CREATE INDEX deliveries_provider_id ON deliveries (provider, provider_id) WHERE provider_id <> '';
