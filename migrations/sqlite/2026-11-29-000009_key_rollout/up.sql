-- Key roll-out: a new signing key is published (in the JWKS) before any instance signs with it.
-- `activates_at` is when instances start signing with the key; until then it only verifies.
-- A rotation sets the previous key's `retired_at` to the new key's `activates_at`.

-- SQLite adds a NOT NULL column only with a default; every insert names the column, and the empty
-- default would not parse as a time, so a row without one is an error rather than a silent value.
ALTER TABLE signing_keys ADD COLUMN activates_at TEXT NOT NULL DEFAULT '';
UPDATE signing_keys SET activates_at = created_at;
