UPDATE roles SET permissions = '["organization.read","organization.update","member.list","member.add","member.remove","role.read","role.create","role.update","role.delete","role.assign","audit.read","audit.read_sensitive","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry"]'
    WHERE id = '00000000-0000-7000-8000-000000000002';
UPDATE roles SET permissions = '["organization.read","member.list","member.add","member.remove","role.read","role.assign","audit.read","audit.verify","invitation.create","invitation.read","invitation.list","invitation.resend","invitation.revoke","email.list","email.retry"]'
    WHERE id = '00000000-0000-7000-8000-000000000003';
UPDATE authz_state SET version = version + 1;
DROP INDEX jobs_status_run_idx;
DROP INDEX jobs_lane_idx;
ALTER TABLE jobs DROP COLUMN lane_position;
ALTER TABLE jobs DROP COLUMN lane;
DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
