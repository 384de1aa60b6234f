-- The ledger's counters (0149) only for the notifications that have a
-- plan: broadcasts, alerts and their escalations, outage notices, whose
-- live counts are read. A one-time code or a direct notification is a
-- notification of its own with a row or two: counting it made two or
-- more counter rows a code for nothing (the ledger's PostgreSQL CPU a
-- code's row went from 6-8 to 23-27 us), and its counts are read by
-- grouping its few rows as before. A plan's row is written when the
-- planner starts it, before it publishes any batch, so every ledger row
-- of a planned notification comes after it and is counted.
CREATE OR REPLACE FUNCTION delivery_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), COUNT(*) FROM new_rows
            WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = new_rows.notification_id)
            GROUP BY notification_id, channel, provider, status ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, pg_backend_pid(), COUNT(*)
            FROM new_rows WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = new_rows.notification_id)
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), -COUNT(*) FROM old_rows
            WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = old_rows.notification_id)
            GROUP BY notification_id, channel, provider, status ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, pg_backend_pid(), -COUNT(*)
            FROM old_rows WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = old_rows.notification_id)
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO delivery_counts AS c (notification_id, channel, provider, status, slot, n)
            SELECT notification_id, channel, provider, status, pg_backend_pid(), SUM(n) FROM (
                SELECT notification_id, channel, provider, status, -1 AS n FROM old_rows
                UNION ALL SELECT notification_id, channel, provider, status, 1 FROM new_rows) x
            WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = x.notification_id)
            GROUP BY notification_id, channel, provider, status HAVING SUM(n) <> 0 ORDER BY 1, 2, 3, 4
            ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO delivery_seconds AS c (notification_id, second, status, slot, n)
            SELECT notification_id, s, status, pg_backend_pid(), SUM(n) FROM (
                SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT) AS s, status, -1 AS n FROM old_rows
                UNION ALL SELECT notification_id, CAST(floor(extract(epoch FROM updated_at)) AS BIGINT), status, 1 FROM new_rows) x
            WHERE EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = x.notification_id)
            GROUP BY notification_id, s, status HAVING SUM(n) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

-- Counters of notifications without a plan (written since 0149).
DELETE FROM delivery_counts c WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = c.notification_id);
DELETE FROM delivery_seconds c WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.notification_id = c.notification_id);
