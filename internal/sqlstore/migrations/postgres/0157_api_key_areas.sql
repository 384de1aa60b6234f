-- The areas an API key may publish outage schedules for (space-separated
-- area codes; a code covers every unit below it). Before this migration
-- an outages:write key could notify any area. A key that already holds
-- outages:write keeps exactly the areas it has published for so far, so
-- the power company's existing schedules keep working and nothing wider
-- is granted; a key that never published gets no area and is refused
-- until an operator sets its areas (loa admin apikey areas, docs/api.md
-- "Power-outage schedules"). NULL on keys without outages:write.
ALTER TABLE api_keys ADD COLUMN areas TEXT;

UPDATE api_keys k SET areas = COALESCE((
    SELECT string_agg(DISTINCT a.code, ' ' ORDER BY a.code)
      FROM outages o, regexp_split_to_table(o.areas, '\s+') AS a(code)
     WHERE o.client = k.id AND a.code <> ''), '')
 WHERE ' ' || k.scopes || ' ' LIKE '% outages:write %';
