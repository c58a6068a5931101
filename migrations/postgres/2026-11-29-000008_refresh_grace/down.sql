ALTER TABLE refresh_tokens DROP COLUMN successor_salt;
ALTER TABLE refresh_tokens DROP COLUMN replaced_by;
ALTER TABLE refresh_tokens DROP COLUMN used_user_agent;
ALTER TABLE refresh_tokens DROP COLUMN used_ip;
