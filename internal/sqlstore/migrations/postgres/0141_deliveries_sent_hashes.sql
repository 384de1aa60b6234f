-- A 4-byte hash of each address of a compact entry (FNV-1a, 32 bits, big
-- endian, in the order of recipients), so the live counts can find the
-- entries that may hold an address that also has a deliveries row (a
-- redelivery's receipt, a failure) without opening every entry: reading
-- 4 bytes an address instead of unnesting each one (at 1,000,000 sends,
-- 4 MB instead of 1,000,000 rows). A hash is only a sign: the entries
-- it points at are opened and their addresses compared. NULL in entries
-- written before it: those are always opened.
ALTER TABLE deliveries_sent ADD COLUMN recipient_hashes BYTEA;
ALTER TABLE deliveries_sent ALTER COLUMN recipient_hashes SET STORAGE EXTERNAL;
