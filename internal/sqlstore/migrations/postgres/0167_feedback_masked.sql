-- Anyone may list public feedback (GET /v1/public/feedback, 500 a page;
-- Open311's GET requests, 1,000), and each view masks phones, IDs, e-mail
-- addresses, the citizen's name and address in the texts: 0.6-0.75 ms of
-- the API's CPU a description of 4,000 characters, so some 0.6 s a page
-- of such matters for one anonymous request. Each version of a matter is
-- now stored with its masked texts (feedback.Masked), written with the
-- version; masked_rules is the feedback.MaskRules they were computed by,
-- 0 for the rows written before this migration, which the first public
-- read masks and stores; masked_version the version they were computed
-- from (a step stored by an older release during the upgrade leaves the
-- masks of the version before, which are then not shown).
ALTER TABLE feedback ADD COLUMN masked_rules INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feedback ADD COLUMN masked_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feedback ADD COLUMN masked_title TEXT NOT NULL DEFAULT '';
ALTER TABLE feedback ADD COLUMN masked_description TEXT NOT NULL DEFAULT '';
ALTER TABLE feedback ADD COLUMN masked_answer TEXT NOT NULL DEFAULT '';
