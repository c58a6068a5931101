//! portcullis: a GraphQL-first authorization gateway — identity, sessions, policies and audit in one binary.

pub mod app;
pub mod audit;
pub mod authz;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod telemetry;
