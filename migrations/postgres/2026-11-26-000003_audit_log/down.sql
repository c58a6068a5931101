UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE roles SET permissions = '["organization.read","member.list","role.read","policy.read","cedar_schema.read"]',
    description = 'Reads an organization, its members, roles and the policies in force.'
    WHERE id = '00000000-0000-7000-8000-000000000005';
UPDATE authz_state SET version = version + 1;
DROP TABLE audit_state;
DROP TABLE audit_chains;
DROP TABLE audit_targets;
DROP TABLE audit_events;
