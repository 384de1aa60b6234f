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
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;

-- UPDATE and TRUNCATE are always refused. DELETE is refused unless the
-- transaction-local setting loa.audit_purge_before is set and the row is
-- older than it and than a day; only loa_audit_purge sets it, and clears
-- it again before it returns. The setting guards against every other code path of Loa;
-- against a person with SQL access it is the role separation that holds:
-- run migrations as the owner and give Loa's role only SELECT and INSERT
-- on audit_log and EXECUTE on loa_audit_purge (SECURITY DEFINER), and
-- Loa's role cannot delete a row any other way.
CREATE FUNCTION loa_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Whoever sets the setting, the last day stays.
    IF TG_OP = 'DELETE'
       AND OLD.at < NULLIF(current_setting('loa.audit_purge_before', true), '')::timestamptz
       AND OLD.at < now() - interval '1 day' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused (only loa admin audit purge deletes, and only old rows)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION loa_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION loa_audit_log_append_only();

-- loa_audit_purge deletes the rows older than cutoff and returns how many.
-- It refuses a cutoff within the last day, so that nobody erases the
-- trace of what they just did. The caller writes the purge's own audit
-- row in the same transaction.
CREATE FUNCTION loa_audit_purge(cutoff TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n BIGINT;
BEGIN
    IF cutoff IS NULL OR cutoff > now() - interval '1 day' THEN
        RAISE EXCEPTION 'audit_log: a purge keeps at least the last day (cutoff %)', cutoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE api_keys k SET last_used_at = u.at
      FROM (SELECT substr(actor, 8) AS id, max(at) AS at FROM audit_log
             WHERE at < cutoff AND actor LIKE 'apikey:%' GROUP BY 1) u
     WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at);
    PERFORM set_config('loa.audit_purge_before', cutoff::text, true);
    DELETE FROM audit_log WHERE at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('loa.audit_purge_before', '', true);
    RETURN n;
END
$$;
