DROP TABLE gateway_secrets;
ALTER TABLE sessions DROP COLUMN mfa_expires_at;
ALTER TABLE sessions DROP COLUMN mfa_verified_at;
DROP TABLE passkey_setup_links;
DROP TABLE webauthn_ceremonies;
DROP TABLE passkeys;
