-- Credential rate limits counted in the database, so that every instance on it spends one budget:
-- N instances behind a load balancer allow no more guesses than one. One row per limiter and key
-- (`identity::rate_limit`); each step is a single statement, so concurrent attempts on any
-- instances are counted one at a time.

CREATE TABLE credential_attempts (
    -- Which limit: `login`, `login_account`, `refresh`, `api_key`, `invitation_token`, `passkey`.
    limiter text NOT NULL,
    -- SHA-256 of what the limit is keyed by (an account's email, a client's address, or both):
    -- fixed width, and no addresses kept in plain text in a table nobody audits.
    key_hash bytea NOT NULL,
    window_started timestamptz NOT NULL,
    -- Attempts counted in the window: failed ones and those still being checked.
    attempts integer NOT NULL CHECK (attempts >= 0),
    -- Set by the failure that spent the budget; no attempt is counted until then.
    locked_until timestamptz,
    -- When the row stops mattering (the end of its window, or of its lock): the next attempt
    -- after it starts afresh, and the periodic sweep deletes it.
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (limiter, key_hash)
);
CREATE INDEX credential_attempts_expiry_idx ON credential_attempts (expires_at);
