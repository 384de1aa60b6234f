-- A broadcast's audience size as counted for its approver: stored once
-- the broadcast is decided (approved, rejected, cancelled), so that
-- reading it (a console polling a live broadcast) never counts the
-- audience again: at 1,000,000 devices a count is about 6 s of
-- PostgreSQL. NULL until a figure is stored.
ALTER TABLE broadcasts ADD COLUMN reach_devices INTEGER,
    ADD COLUMN reach_phones INTEGER,
    ADD COLUMN reach_counted_at TIMESTAMPTZ;
