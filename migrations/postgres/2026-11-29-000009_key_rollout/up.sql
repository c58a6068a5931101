-- Key roll-out: a new signing key is published (in the JWKS) before any instance signs with it.
-- `activates_at` is when instances start signing with the key; until then it only verifies.
-- A rotation sets the previous key's `retired_at` to the new key's `activates_at`.

ALTER TABLE signing_keys ADD COLUMN activates_at timestamptz;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL;
