-- Passkeys (WebAuthn credentials), the state of WebAuthn ceremonies in flight, links that let an
-- account without a password register its first passkey, and when a session last proved a second
-- factor.

CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- base64url of the credential id: what an assertion names, unique across the gateway.
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- webauthn-rs's Passkey (public key, signature counter, backup flags), as JSON.
    credential TEXT NOT NULL,
    authenticator_attachment TEXT CHECK (authenticator_attachment IN ('platform', 'cross-platform')),
    -- JSON array of transport hints (`internal`, `usb`, `hybrid`, …).
    transports TEXT NOT NULL,
    aaguid TEXT,
    backup_eligible BOOLEAN NOT NULL,
    backed_up BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, id);

-- One row per ceremony in flight; taken (deleted) by the step that finishes it, so each is used
-- once, on whichever instance the browser reaches.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('registration', 'authentication', 'step_up')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry_idx ON webauthn_ceremonies (expires_at);

CREATE TABLE passkey_setup_links (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_by_user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX passkey_setup_links_expiry_idx ON passkey_setup_links (expires_at);

ALTER TABLE sessions ADD COLUMN mfa_verified_at TEXT;
ALTER TABLE sessions ADD COLUMN mfa_expires_at TEXT;

-- Secrets every instance must share, made once by whichever instance starts first: the key that
-- makes up passkey credential ids for emails without passkeys (the same on every instance, so
-- asking twice cannot tell a made-up answer from a real one).
CREATE TABLE gateway_secrets (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
