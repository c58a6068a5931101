-- Invitations, organization branding, bulk-invite idempotency, and the durable job queue that
-- carries every outbound message (emails now, webhooks and alerts later).

CREATE TABLE organization_branding (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    display_name text,
    logo_url text,
    primary_color text,
    email_from_name text,
    support_email text,
    default_locale text,
    updated_at timestamptz NOT NULL
);

CREATE TABLE invitations (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Normalized (trimmed, lower case): comparisons are case-insensitive by construction.
    email text NOT NULL,
    message text,
    locale text,
    status text NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
    -- Minted when the email is sent, so the token never rests anywhere in plain text; NULL
    -- between a resend and its email (the old link is dead at once).
    token_hash bytea UNIQUE,
    invited_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    invited_by_api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    expires_at timestamptz NOT NULL,
    send_count integer NOT NULL,
    last_sent_at timestamptz,
    accepted_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    accepted_at timestamptz,
    revoked_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at timestamptz,
    -- When it stopped being pending: retention counts from here.
    ended_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX invitations_one_pending_idx ON invitations (organization_id, email) WHERE status = 'pending';
CREATE INDEX invitations_organization_idx ON invitations (organization_id, id);
CREATE INDEX invitations_expiry_idx ON invitations (expires_at) WHERE status = 'pending';
CREATE INDEX invitations_ended_idx ON invitations (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE invitation_roles (
    invitation_id uuid NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (invitation_id, role_id)
);

-- One bulk invitation call per (organization, idempotency key): its payload's digest and its answer.
CREATE TABLE invitation_batches (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    payload_digest text NOT NULL,
    results text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, idempotency_key)
);

CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    payload text NOT NULL,
    -- Who the job concerns, for operators' lists: the organization and the recipient address.
    organization_id uuid,
    recipient text,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
    attempts integer NOT NULL,
    max_attempts integer NOT NULL,
    run_at timestamptz NOT NULL,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_kind_idx ON jobs (kind, id);
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Organization owners and administrators invite, and see the organization's email deliveries.
UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign","audit.read","audit.read_sensitive","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign","audit.read","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE authz_state SET version = version + 1;
