-- The audit log: events in commit order (seq), their targets for filtering, one hash chain per
-- organization (and one for gateway-wide events), and the sequence every audited write takes.

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    occurred_at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'anonymous')),
    actor_id TEXT,
    actor_user_id TEXT,
    actor_name TEXT,
    organization_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    targets TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    salt TEXT NOT NULL,
    personal_digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    erased_at TEXT
);
CREATE INDEX audit_events_organization_idx ON audit_events (organization_id, seq);
CREATE INDEX audit_events_actor_user_idx ON audit_events (actor_user_id, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);

CREATE TABLE audit_targets (
    event_id TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    display_name TEXT,
    PRIMARY KEY (event_id, position)
);
CREATE INDEX audit_targets_target_idx ON audit_targets (target_type, target_id);

CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);

CREATE TABLE audit_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO audit_state (id, last_seq) VALUES (1, 0);

-- The audit log's own actions: auditors and organization administrators read their organization's events.
UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign","audit.read","audit.read_sensitive","audit.verify"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign","audit.read","audit.verify"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE roles SET permissions = '["organization.read","member.list","role.read","policy.read","cedar_schema.read","audit.read","audit.read_sensitive","audit.verify"]',
    description = 'Reads an organization, its members, roles, the policies in force and its audit log.'
    WHERE id = '00000000-0000-7000-8000-000000000005';
UPDATE authz_state SET version = version + 1;
