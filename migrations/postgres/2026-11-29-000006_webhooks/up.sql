-- Webhooks: endpoints that receive the audit log as it is written, the messages queued for them
-- (each one a job in `jobs`, delivered by the shared runner) and every attempt to deliver one.

CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY,
    -- NULL: a gateway-wide endpoint (every event); else it receives that organization's events only.
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    url text NOT NULL,
    description text NOT NULL,
    -- JSON array of audit action names and prefixes such as `policy.*`; empty: every event.
    event_types text NOT NULL,
    enabled boolean NOT NULL,
    -- One message at a time, in commit order (else several at once, in any order).
    ordered boolean NOT NULL,
    -- Whether IP and user agent are sent unmasked (set only by those allowed to read them).
    include_sensitive boolean NOT NULL,
    -- `whsec_…`, as the receiver holds it: HMAC needs the secret itself, not a hash.
    secret text NOT NULL,
    -- The secret before the last rotation, which also signs until it expires.
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- Audit events up to this position have been turned into messages (or skipped).
    cursor_seq bigint NOT NULL,
    -- The position the endpoint's next message takes in its delivery lane.
    next_position bigint NOT NULL,
    -- Since when every attempt has failed; NULL after a success.
    failing_since timestamptz,
    disabled_reason text,
    -- Who vouches for what it receives: its creator, or whoever last turned on
    -- include_sensitive. IP and user agent go out unmasked only while this user may read them.
    owner_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_organization_idx ON webhook_endpoints (organization_id, id);

-- A message shares its id with the job that delivers it (and goes when the settled job is cleared).
CREATE TABLE webhook_messages (
    id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('event', 'replay', 'test')),
    event_id uuid,
    event_seq bigint,
    event_type text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id uuid PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code integer,
    duration_ms integer NOT NULL,
    -- The first KiB of the response body.
    response_body text,
    error text
);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_id, attempted_at);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at);

-- Lanes: jobs sharing a lane with a position run one at a time, in position order; jobs sharing a
-- lane without one run side by side, a few at a time. The claim looks up a lane's other jobs by
-- status for every candidate: a plain index (SQLite uses a partial one only for identical terms).
ALTER TABLE jobs ADD COLUMN lane text;
ALTER TABLE jobs ADD COLUMN lane_position bigint;
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
