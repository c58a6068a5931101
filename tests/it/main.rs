//! Integration tests: every public surface, on SQLite and (when configured) PostgreSQL.

mod support;

mod api_keys;
mod audit;
mod audit_export;
mod audit_feed;
mod authz;
mod browser;
mod browser_passkeys;
mod differential;
mod email;
mod forbidden;
mod http_spec;
mod instances;
mod invitation_rules;
mod invitations;
mod login_page;
mod migrations;
mod organizations;
mod passkeys;
mod proxies;
mod python_server;
mod refresh_grace;
mod schema;
mod security;
mod sessions;
mod smtp;
mod soft_authenticator;
mod users;
mod webhook_cluster;
mod webhook_delivery;
mod webhook_receiver;
mod webhooks;
mod websocket;
