//! Webhooks: the audit log delivered outward to integrators' endpoints, signed as Standard
//! Webhooks 1.0 prescribes.
//!
//! Built so far: the signature scheme ([`signature`]) and the destination rules ([`destination`]).
//! Endpoints, delivery through the job runner, retries, the dead-letter queue and replay follow.

pub mod destination;
pub mod signature;
