-- The inbox PostgreSQL's audited writes append to (see the PostgreSQL migration). SQLite has one
-- writer at a time, so its transactions keep positioning their own events and leave this empty;
-- the table exists so that both backends share one schema.

CREATE TABLE audit_inbox (
    inbox_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
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
    personal_digest TEXT NOT NULL
);
