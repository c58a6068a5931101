ALTER TABLE users ADD COLUMN super_admin boolean NOT NULL DEFAULT false;
UPDATE users SET super_admin = true WHERE id IN (
    SELECT user_id FROM role_assignments
    WHERE role_id = '00000000-0000-7000-8000-000000000001' AND organization_id IS NULL
);
DROP TABLE authz_state;
DROP TABLE cedar_schemas;
DROP TABLE role_assignments;
DROP TABLE role_policies;
DROP TABLE policies;
DROP TABLE roles;
