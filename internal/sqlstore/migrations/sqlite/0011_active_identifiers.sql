-- A pending registration reserves nothing: a citizen ID, a tax code and a
-- verified phone are unique among active accounts only, so a stranger's
-- unverified claim cannot keep the owner out. Pending registrations
-- expire and are deleted; the index finds them.
DROP INDEX accounts_citizen_id;
DROP INDEX accounts_tax_code;
DROP INDEX accounts_verified_phone;
CREATE UNIQUE INDEX accounts_citizen_id ON accounts (citizen_id) WHERE citizen_id IS NOT NULL AND status = 'active';
CREATE UNIQUE INDEX accounts_tax_code ON accounts (tax_code) WHERE tax_code IS NOT NULL AND status = 'active';
CREATE UNIQUE INDEX accounts_verified_phone ON accounts (phone) WHERE phone_verified_at IS NOT NULL AND status = 'active';
CREATE INDEX accounts_pending ON accounts (created_at) WHERE status = 'pending';
