-- Webhooks: endpoints that receive the audit log as it is written, the messages queued for them
-- (each one a job in `jobs`, delivered by the shared runner) and every attempt to deliver one.

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    -- NULL: a gateway-wide endpoint (every event); else it receives that organization's events only.
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON array of audit action names and prefixes such as `policy.*`; empty: every event.
    event_types TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- One message at a time, in commit order (else several at once, in any order).
    ordered BOOLEAN NOT NULL,
    -- Whether IP and user agent are sent unmasked (set only by those allowed to read them).
    include_sensitive BOOLEAN NOT NULL,
    -- `whsec_…`, as the receiver holds it: HMAC needs the secret itself, not a hash.
    secret TEXT NOT NULL,
    -- The secret before the last rotation, which also signs until it expires.
    previous_secret TEXT,
    previous_secret_expires_at TEXT,
    -- Audit events up to this position have been turned into messages (or skipped).
    cursor_seq BIGINT NOT NULL,
    -- The position the endpoint's next message takes in its delivery lane.
    next_position BIGINT NOT NULL,
    -- Since when every attempt has failed; NULL after a success.
    failing_since TEXT,
    disabled_reason TEXT,
    -- Who vouches for what it receives: its creator, or whoever last turned on
    -- include_sensitive. IP and user agent go out unmasked only while this user may read them.
    owner_user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_organization_idx ON webhook_endpoints (organization_id, id);

-- A message shares its id with the job that delivers it (and goes when the settled job is cleared).
CREATE TABLE webhook_messages (
    id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'replay', 'test')),
    event_id TEXT,
    event_seq BIGINT,
    event_type TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    -- The first KiB of the response body.
    response_body TEXT,
    error TEXT
);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_id, attempted_at);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at);

-- Lanes: jobs sharing a lane with a position run one at a time, in position order; jobs sharing a
-- lane without one run side by side, a few at a time. The claim looks up a lane's other jobs by
-- status for every candidate: a plain index (SQLite uses a partial one only for identical terms).
ALTER TABLE jobs ADD COLUMN lane TEXT;
ALTER TABLE jobs ADD COLUMN lane_position BIGINT;
CREATE INDEX jobs_lane_idx ON jobs (lane, status, lane_position);
-- Every claim finds due jobs by status and time; settled ones (kept 30 days, one per webhook
-- message) must not be scanned for it.
CREATE INDEX jobs_status_run_idx ON jobs (status, run_at);

-- Organization owners and administrators manage their organization's webhooks.
UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign","audit.read","audit.read_sensitive","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry","webhook.list","webhook.create","webhook.update","webhook.delete","webhook.deliver"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign","audit.read","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry","webhook.list","webhook.create","webhook.update","webhook.delete","webhook.deliver"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE authz_state SET version = version + 1;
