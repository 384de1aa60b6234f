-- What one integrating system sent in the last 24 hours, over every
-- phone it named (feedback.Config.KeyPerDay and KeyPhotosPerDay): the
-- count reads this index's range for the key, not a day of every
-- sender's matters.
CREATE INDEX feedback_client ON feedback (client_id, created_at);
