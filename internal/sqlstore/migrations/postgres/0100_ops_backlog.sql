-- The operators' gauges count the dead letters still waiting for a
-- replay and find the oldest of them at every scrape.
CREATE INDEX dead_letters_waiting ON dead_letters (at) WHERE replayed_at IS NULL;
