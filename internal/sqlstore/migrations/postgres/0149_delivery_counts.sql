-- Counters of the delivery ledger's rows, kept by the database in the
-- statement that writes the rows, so that the live counts of a
-- notification read a few counters instead of grouping its rows: at
-- 1,000,000 rows (an SMS or e-mail send: one row a delivery) a GROUP BY
-- was 1.0-1.1 s of PostgreSQL a poll.
--
-- delivery_counts holds, per notification, channel, provider and
-- status, how many rows are in that state; delivery_seconds, per
-- notification, status and second of the row's updated_at, how many
-- rows reached that state in that second (the rate). A row's update
-- takes one from its old state's counters and adds one to its new
-- state's; an upsert that leaves a row as it is (a lower rank refused)
-- changes nothing. The triggers see the rows PostgreSQL actually
-- inserted and updated (transition tables), so COPY, the upsert and a
-- refold after a restart all count each row once.
--
-- slot is the writing backend's pid: two transactions running at once
-- are on different backends, so they never update the same counter row
-- and never wait for each other (or deadlock) on a counter. A reader
-- sums a key's slots. Compact push entries (deliveries_sent) are not
-- counted here; the readers add them as before.
CREATE TABLE delivery_counts (
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    status          TEXT NOT NULL,
    slot            INTEGER NOT NULL,
    n               BIGINT NOT NULL,
    PRIMARY KEY (notification_id, channel, provider, status, slot)
);

CREATE TABLE delivery_seconds (
    notification_id TEXT NOT NULL,
    second          BIGINT NOT NULL,
    status          TEXT NOT NULL,
    slot            INTEGER NOT NULL,
    n               BIGINT NOT NULL,
    PRIMARY KEY (notification_id, second, status, slot)
);

-- delivery_counts_add adds the rows of one statement to the counters:
-- +1 for each row of new_rows, -1 for each of old_rows (an update has
-- both, a delete only old_rows). Keys are
-- written in order, so one statement takes its counter rows in a fixed
-- order.
CREATE FUNCTION delivery_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), COUNT(*) FROM new_rows
            GROUP BY notification_id, channel, provider, status ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, pg_backend_pid(), COUNT(*)
            FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), -COUNT(*) FROM old_rows
            GROUP BY notification_id, channel, provider, status ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, pg_backend_pid(), -COUNT(*)
            FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), SUM(n) FROM (
                SELECT notification_id, channel, provider, status, -1 AS n FROM old_rows
                UNION ALL SELECT notification_id, channel, provider, status, 1 FROM new_rows) x
            GROUP BY notification_id, channel, provider, status HAVING SUM(n) <> 0 ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, s, status, pg_backend_pid(), SUM(n) FROM (
                SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT) AS s, status, -1 AS n FROM old_rows
                UNION ALL SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, 1 FROM new_rows) x
            GROUP BY notification_id, s, status HAVING SUM(n) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_add();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_add();
-- Nothing deletes ledger rows today; if an operator does, the counters follow.
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_add();

-- The rows already there (CREATE TRIGGER locked out writers until this
-- migration commits, so none is missed or counted twice).
INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
    SELECT notification_id, channel, provider, status, 0, COUNT(*) FROM deliveries GROUP BY 1, 2, 3, 4;
INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
    SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, 0, COUNT(*) FROM deliveries GROUP BY 1, 2, 3;
