-- The areas an API key may alert without approval (space-separated area
-- codes; a code covers every unit below it), kept apart from the areas
-- it may publish outage schedules for (0157): a key holding both scopes
-- may be bound differently for each. Before this migration a
-- pre-authorised alerts:issue key could alert any area. So that the
-- province's existing alerting path keeps working on the day of the
-- upgrade, a key that already holds alerts:issue is bound to every top
-- unit loaded (the province, or each province of a multi-province
-- install): it may still alert everywhere, now by an explicit binding
-- that operators narrow for district or station keys (loa admin apikey
-- alert-areas; docs/api.md "Disaster alerts"). NULL on other keys.
ALTER TABLE api_keys ADD COLUMN alert_areas TEXT;

UPDATE api_keys SET alert_areas = COALESCE((
    SELECT string_agg(a.code, ' ' ORDER BY a.code) FROM areas a
     WHERE a.parent IS NULL OR a.parent = ''), '')
 WHERE ' ' || scopes || ' ' LIKE '% alerts:issue %';
