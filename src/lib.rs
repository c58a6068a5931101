//! portcullis: a GraphQL-first authorization gateway — identity, sessions, policies and audit in one binary.

pub mod app;
pub mod audit;
pub mod authz;
pub mod branding;
pub mod clock;
pub mod config;
pub mod db;
pub mod email;
pub mod error;
pub mod graphql;
pub mod http;
pub mod i18n;
pub mod identity;
pub mod invitations;
pub mod jobs;
pub mod pages;
pub mod passkeys;
pub mod telemetry;
pub mod webhooks;
