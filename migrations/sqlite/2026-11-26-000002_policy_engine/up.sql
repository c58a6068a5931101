-- Policy engine: roles, Cedar policies, role-to-template links, role assignments, integrator
-- schema fragments, and the version every authorization change bumps.

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    built_in BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX roles_global_key_idx ON roles (key) WHERE organization_id IS NULL;
CREATE UNIQUE INDEX roles_organization_key_idx ON roles (organization_id, key) WHERE organization_id IS NOT NULL;

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('static', 'template')),
    effect TEXT NOT NULL CHECK (effect IN ('permit', 'forbid')),
    enabled BOOLEAN NOT NULL,
    version INTEGER NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE role_policies (
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    policy_id TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (role_id, policy_id)
);
CREATE INDEX role_policies_policy_id_idx ON role_policies (policy_id);

CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX role_assignments_global_idx ON role_assignments (user_id, role_id) WHERE organization_id IS NULL;
CREATE UNIQUE INDEX role_assignments_scoped_idx ON role_assignments (user_id, role_id, organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX role_assignments_role_id_idx ON role_assignments (role_id, id);

CREATE TABLE cedar_schemas (
    namespace TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    updated_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE authz_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO authz_state (id, version) VALUES (1, 1);

-- Built-in roles: fixed ids, so code and policies can name them.
INSERT INTO roles (id, key, name, description, organization_id, permissions, built_in, created_at, updated_at) VALUES
    ('00000000-0000-7000-8000-000000000001', 'super_admin', 'Super administrator', 'May do everything, in every organization.', NULL, '["*"]', 1, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
    ('00000000-0000-7000-8000-000000000002', 'org_owner', 'Organization owner', 'Runs an organization: its settings, members, roles and assignments.', NULL, '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign"]', 1, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
    ('00000000-0000-7000-8000-000000000003', 'org_admin', 'Organization administrator', 'Manages an organization''s members and their role assignments.', NULL, '["organization.read","member.list","member.add","member.remove","role.read","role.assign"]', 1, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
    ('00000000-0000-7000-8000-000000000004', 'org_member', 'Organization member', 'Held implicitly by every member: reads the organization and its members.', NULL, '["organization.read","member.list"]', 1, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
    ('00000000-0000-7000-8000-000000000005', 'auditor', 'Auditor', 'Reads an organization, its members, roles and the policies in force.', NULL, '["organization.read","member.list","role.read","policy.read","cedar_schema.read"]', 1, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z');

-- Super-administrators become holders of the built-in role (the assignment reuses the user's id).
INSERT INTO role_assignments (id, user_id, role_id, organization_id, created_at)
    SELECT id, id, '00000000-0000-7000-8000-000000000001', NULL, created_at FROM users WHERE super_admin = 1;
ALTER TABLE users DROP COLUMN super_admin;
