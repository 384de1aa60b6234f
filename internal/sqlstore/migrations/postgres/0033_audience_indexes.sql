-- Audience pages are read through indexes that lead with what selects the
-- audience (an area, a topic, a role), in account order, and then the
-- account's devices in id order: a page of a small area reads that area's
-- rows, never the rest of the devices table.
CREATE INDEX subscription_areas_area_account ON subscription_areas (area_code, account_id);
DROP INDEX subscription_areas_area;
CREATE INDEX subscription_topics_topic_account ON subscription_topics (topic, account_id);
DROP INDEX subscription_topics_topic;
CREATE INDEX role_grants_role_account ON role_grants (role, account_id);
CREATE INDEX devices_account_id ON devices (account_id, id) WHERE active;
DROP INDEX devices_account;
