//! Integration tests: every public surface, on SQLite and (when configured) PostgreSQL.

mod support;

mod api_keys;
mod audit;
mod audit_export;
mod audit_feed;
mod authz;
mod browser;
mod browser_passkeys;
mod cluster_keys;
mod db_faults;
mod differential;
mod drain;
mod email;
mod forbidden;
mod http_spec;
mod instances;
mod invitation_rules;
mod invitations;
mod leader;
mod login_page;
mod migrations;
mod organizations;
mod passkeys;
mod python_server;
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
