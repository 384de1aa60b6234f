-- A broadcast's audience size as counted for its approver: stored once
-- the broadcast is decided (approved, rejected, cancelled), so that
-- reading it never counts the audience again. NULL until a figure is
-- stored.
ALTER TABLE broadcasts ADD COLUMN reach_devices INTEGER;
ALTER TABLE broadcasts ADD COLUMN reach_phones INTEGER;
ALTER TABLE broadcasts ADD COLUMN reach_counted_at TIMESTAMP;
