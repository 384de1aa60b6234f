-- A subscriber's quiet hours: a daily window of local time (minutes after
-- midnight; end before start runs past midnight) in which bulk notices and
-- outage reminders are held until it ends. NULL: none.
ALTER TABLE subscriptions ADD COLUMN quiet_start INTEGER;
ALTER TABLE subscriptions ADD COLUMN quiet_end INTEGER;
ALTER TABLE subscriptions ADD COLUMN quiet_tz TEXT NOT NULL DEFAULT '';
