-- Passkeys (WebAuthn credentials), the state of WebAuthn ceremonies in flight, links that let an
-- account without a password register its first passkey, and when a session last proved a second
-- factor.

CREATE TABLE passkeys (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- base64url of the credential id: what an assertion names, unique across the gateway.
    credential_id text NOT NULL UNIQUE,
    name text NOT NULL,
    -- webauthn-rs's Passkey (public key, signature counter, backup flags), as JSON.
    credential text NOT NULL,
    authenticator_attachment text CHECK (authenticator_attachment IN ('platform', 'cross-platform')),
    -- JSON array of transport hints (`internal`, `usb`, `hybrid`, …).
    transports text NOT NULL,
    aaguid text,
    backup_eligible boolean NOT NULL,
    backed_up boolean NOT NULL,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, id);

-- One row per ceremony in flight; taken (deleted) by the step that finishes it, so each is used
-- once, on whichever instance the browser reaches.
CREATE TABLE webauthn_ceremonies (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('registration', 'authentication', 'step_up')),
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    state text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry_idx ON webauthn_ceremonies (expires_at);

CREATE TABLE passkey_setup_links (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX passkey_setup_links_expiry_idx ON passkey_setup_links (expires_at);

ALTER TABLE sessions ADD COLUMN mfa_verified_at timestamptz;
ALTER TABLE sessions ADD COLUMN mfa_expires_at timestamptz;

-- Secrets every instance must share, made once by whichever instance starts first: the key that
-- makes up passkey credential ids for emails without passkeys (the same on every instance, so
-- asking twice cannot tell a made-up answer from a real one).
CREATE TABLE gateway_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL
);
