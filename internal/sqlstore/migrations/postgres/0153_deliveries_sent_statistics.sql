-- ANALYZE leaves the compact entries' arrays alone. For an array column
-- it reads every sampled row's array whole (out of line: detoasted) and
-- counts its elements, and deliveries_sent's are a receipt batch's
-- addresses, message ids, times and address hashes, each distinct: up to
-- 30,000 entries of 500-1,000 elements each per ANALYZE, learning only
-- that every element is unique. Autovacuum analyzes the table after each
-- tenth of its size is inserted, so a million-device broadcast on a table
-- of 16,000 entries set one off during the sending: 17-20 CPU-s of
-- PostgreSQL (4 CPU-s for 4,000 entries; 20 ms without the arrays),
-- growing with the table. No query's plan needs them: every reader finds
-- entries by notification_id (the primary key); the other columns keep
-- their statistics.
ALTER TABLE deliveries_sent ALTER COLUMN recipients SET STATISTICS 0,
    ALTER COLUMN provider_ids SET STATISTICS 0,
    ALTER COLUMN ats SET STATISTICS 0,
    ALTER COLUMN recipient_hashes SET STATISTICS 0;
