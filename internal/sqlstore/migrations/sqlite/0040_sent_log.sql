-- The dispatcher's write-ahead record of sends the provider accepted,
-- written before the delivery's claim is marked sent in Redis, so a send is
-- not repeated when Redis loses its keys (a restart without persistence,
-- a flush) or a sender dies between sending and marking. One row per event
-- and marking group; keys holds the groups' 16-byte delivery keys
-- (a hash of notification, channel and address: no address in clear).
-- Rows older than the dispatcher's SentTTL are swept.
CREATE TABLE sent_log (
    event_id TEXT NOT NULL,
    keys     BLOB NOT NULL,
    at       TIMESTAMP NOT NULL
);
CREATE INDEX sent_log_event ON sent_log (event_id);
CREATE INDEX sent_log_at ON sent_log (at);
