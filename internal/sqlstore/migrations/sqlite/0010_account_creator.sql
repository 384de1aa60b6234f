-- Who created an account: an official's account id, "apikey:<id>", or
-- "" for self-registration. The approver rule refuses an approver who
-- created the submitter's account.
ALTER TABLE accounts ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
