-- The audit log records every call of an integrating system or an
-- official (route, outcome, request id) beside the domain's own entries,
-- and the database, not only the code, keeps it append-only.
ALTER TABLE audit_log ADD COLUMN route TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_route ON audit_log (route, at);

-- An API key's last use is its newest audit row; a purge folds the last
-- use of the rows it removes in here first, so it outlives them.
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMP;

-- SQLite has no session settings: the purge opens its gate by inserting
-- a cutoff here inside its transaction and deleting it again before it
-- commits, so outside a purge the table is empty and every DELETE on
-- audit_log is refused. A gate within the last day is refused, so that a
-- purge never erases the trace of what was just done.
CREATE TABLE audit_purge_gate (cutoff TIMESTAMP NOT NULL);

CREATE TRIGGER audit_purge_gate_keeps_a_day BEFORE INSERT ON audit_purge_gate
    WHEN NEW.cutoff > strftime('%Y-%m-%d %H:%M:%S', 'now', '-1 day')
BEGIN
    SELECT RAISE(ABORT, 'audit_log: a purge keeps at least the last day');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN NOT EXISTS (SELECT 1 FROM audit_purge_gate g WHERE OLD.at < g.cutoff)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused (only loa admin audit purge deletes, and only old rows)');
END;
