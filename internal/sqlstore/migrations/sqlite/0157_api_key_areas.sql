-- The areas an API key may publish outage schedules for (space-separated
-- area codes; a code covers every unit below it). Before this migration
-- an outages:write key could notify any area. A key that already holds
-- outages:write keeps exactly the areas it has published for so far, so
-- the power company's existing schedules keep working and nothing wider
-- is granted; a key that never published gets no area and is refused
-- until an operator sets its areas (loa admin apikey areas, docs/api.md
-- "Power-outage schedules"). NULL on keys without outages:write.
ALTER TABLE api_keys ADD COLUMN areas TEXT;

WITH RECURSIVE split(client, code, rest) AS (
    SELECT client, '', areas || ' ' FROM outages
    UNION ALL
    SELECT client, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
      FROM split WHERE rest <> ''
)
UPDATE api_keys SET areas = COALESCE((
    SELECT group_concat(code, ' ') FROM (
        SELECT DISTINCT code FROM split WHERE client = api_keys.id AND code <> '' ORDER BY code)), '')
 WHERE ' ' || scopes || ' ' LIKE '% outages:write %';
