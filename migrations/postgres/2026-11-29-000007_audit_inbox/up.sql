-- Audited writes no longer take the log's sequence row: a transaction only appends its events to
-- the inbox, and one sequencer at a time (whoever holds audit_state's row, never a request) moves
-- committed inbox rows into audit_events in batches, in inbox_seq order, giving them their
-- positions and hashes.

CREATE TABLE audit_inbox (
    inbox_seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    occurred_at timestamptz NOT NULL,
    action TEXT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'anonymous')),
    actor_id uuid,
    actor_user_id uuid,
    actor_name TEXT,
    organization_id uuid,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    targets TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    salt TEXT NOT NULL,
    personal_digest TEXT NOT NULL
);
