-- The lists of feedback (GET /v1/public/feedback, which anyone may call,
-- and GET /v1/feedback) filter by category, area or agency and return the
-- newest first (ORDER BY id DESC). No index served a category or an area,
-- so a filter naming one with no matters walked every matter: 59-171 ms
-- of PostgreSQL at 200,000 matters, for each anonymous request. With
-- these the walk reads that category's, area's or agency's entries only
-- (the agency had (agency, status), which read all of a busy agency's
-- matters to sort them).
CREATE INDEX feedback_category_id ON feedback (category, id);
CREATE INDEX feedback_area_id ON feedback (area, id);
CREATE INDEX feedback_agency_id ON feedback (agency, id);
