-- A refresh token remembers who spent it and what replaced it, so that a client that never got the
-- answer to a refresh (its connection dropped during the commit) can present the token again for a
-- few seconds and receive the same successor instead of having its session revoked for reuse.
--
-- `replaced_by` names the successor (no foreign key: the spent token is marked before its successor
-- is written, in one transaction). `successor_salt` is the random half of what the successor's
-- secret is derived from, the other half being the spent token's own secret, which is never stored;
-- it is erased once the successor is spent, so that no old token leads to a later one.
ALTER TABLE refresh_tokens ADD COLUMN used_ip TEXT;
ALTER TABLE refresh_tokens ADD COLUMN used_user_agent TEXT;
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_salt BLOB;
