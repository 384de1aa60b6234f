-- Delivery reports come from SMS gateways and SMSCs, never from FCM, yet
-- every push row carried its FCM message name into the report index: a
-- second B-tree insert of a long key per push, about a third of what the
-- ledger cost PostgreSQL per push (BenchmarkLedgerPushRows). The index
-- now leaves push rows out; the report lookups say channel <> 'push'.
DROP INDEX deliveries_provider_id;
-- On a large ledger the new index takes a while to build; run this
-- migration in a quiet hour.
CREATE INDEX deliveries_report_id ON deliveries (provider, provider_id) WHERE provider_id <> '' AND channel <> 'push';
