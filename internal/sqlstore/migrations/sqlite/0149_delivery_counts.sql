-- Counters of the delivery ledger's rows, kept by triggers in the
-- statement that writes the rows (see the PostgreSQL migration of the
-- same number): per notification, channel, provider and status, and per
-- notification, status and second of updated_at. SQLite has one writer,
-- so every counter is in slot 0.
CREATE TABLE delivery_counts (
    notification_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    status          TEXT NOT NULL,
    slot            INTEGER NOT NULL,
    n               INTEGER NOT NULL,
    PRIMARY KEY (notification_id, channel, provider, status, slot)
);

CREATE TABLE delivery_seconds (
    notification_id TEXT NOT NULL,
    second          INTEGER NOT NULL,
    status          TEXT NOT NULL,
    slot            INTEGER NOT NULL,
    n               INTEGER NOT NULL,
    PRIMARY KEY (notification_id, second, status, slot)
);

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (NEW.notification_id, NEW.channel, NEW.provider, NEW.status, 0, 1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n + 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (NEW.notification_id, CAST(strftime('%s', substr(NEW.updated_at, 1, 19)) AS INTEGER), NEW.status, 0, 1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries BEGIN
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (OLD.notification_id, OLD.channel, OLD.provider, OLD.status, 0, -1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (NEW.notification_id, NEW.channel, NEW.provider, NEW.status, 0, 1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n + 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (OLD.notification_id, CAST(strftime('%s', substr(OLD.updated_at, 1, 19)) AS INTEGER), OLD.status, 0, -1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (NEW.notification_id, CAST(strftime('%s', substr(NEW.updated_at, 1, 19)) AS INTEGER), NEW.status, 0, 1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries BEGIN
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (OLD.notification_id, OLD.channel, OLD.provider, OLD.status, 0, -1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (OLD.notification_id, CAST(strftime('%s', substr(OLD.updated_at, 1, 19)) AS INTEGER), OLD.status, 0, -1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n - 1;
END;

INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
    SELECT notification_id, channel, provider, status, 0, COUNT(*) FROM deliveries WHERE true GROUP BY 1, 2, 3, 4;
INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
    SELECT notification_id, CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER), status, 0, COUNT(*)
    FROM deliveries WHERE true GROUP BY 1, 2, 3;
