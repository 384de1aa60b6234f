-- The outbox: scheduled_items also holds the publication of a record
-- written in the same transaction as the record (a direct notification,
-- an alert); record names its table, subject its id, and marking the item
-- published marks the record published.
ALTER TABLE scheduled_items ADD COLUMN record TEXT NOT NULL DEFAULT '';
