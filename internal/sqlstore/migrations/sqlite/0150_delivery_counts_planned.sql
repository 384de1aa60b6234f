-- The ledger's counters (0149) only for the notifications that have a
-- plan (see the PostgreSQL migration of the same number).
DROP TRIGGER deliveries_count_insert;
DROP TRIGGER deliveries_count_update;
DROP TRIGGER deliveries_count_delete;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    WHEN EXISTS (SELECT 1 FROM plans WHERE notification_id = NEW.notification_id) BEGIN
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (NEW.notification_id, NEW.channel, NEW.provider, NEW.status, 0, 1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n + 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (NEW.notification_id, CAST(strftime('%s', substr(NEW.updated_at, 1, 19)) AS INTEGER), NEW.status, 0, 1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    WHEN EXISTS (SELECT 1 FROM plans WHERE notification_id = NEW.notification_id) BEGIN
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

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    WHEN EXISTS (SELECT 1 FROM plans WHERE notification_id = OLD.notification_id) BEGIN
    INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
        VALUES (OLD.notification_id, OLD.channel, OLD.provider, OLD.status, 0, -1)
        ON CONFLICT (notification_id, channel, provider, status, slot) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
        VALUES (OLD.notification_id, CAST(strftime('%s', substr(OLD.updated_at, 1, 19)) AS INTEGER), OLD.status, 0, -1)
        ON CONFLICT (notification_id, second, status, slot) DO UPDATE SET n = n - 1;
END;

DELETE FROM delivery_counts WHERE notification_id NOT IN (SELECT notification_id FROM plans);
DELETE FROM delivery_seconds WHERE notification_id NOT IN (SELECT notification_id FROM plans);
