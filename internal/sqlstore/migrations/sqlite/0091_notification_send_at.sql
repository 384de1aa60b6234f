-- Direct notifications sent at a time (send_at, up to 90 days ahead) and
-- cancellable until then: the outbox item falls due at send_at; a cancel
-- stamps cancelled_at and cancels the item in one transaction.
ALTER TABLE notifications ADD COLUMN send_at TIMESTAMP;
ALTER TABLE notifications ADD COLUMN cancelled_at TIMESTAMP;
