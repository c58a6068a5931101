UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign","audit.read","audit.read_sensitive","audit.verify"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign","audit.read","audit.verify"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE authz_state SET version = version + 1;
DROP TABLE jobs;
DROP TABLE invitation_batches;
DROP TABLE invitation_roles;
DROP TABLE invitations;
DROP TABLE organization_branding;
