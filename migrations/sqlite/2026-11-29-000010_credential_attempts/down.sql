DROP TABLE credential_attempts;
