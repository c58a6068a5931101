//! The audit log: every change and security event, recorded in the transaction of the change,
//! chained by hashes per organization, and read back under the same authorization as the rest.

mod actions;
pub mod chain;
pub mod cursor;
pub mod denials;
pub mod erasure;
mod event;
pub mod export;
pub mod feed;
pub mod filter;
pub mod read;
mod record;
pub mod retention;
pub mod sequencer;

pub use actions::AuditAction;
pub use event::{ActorType, Event, Outcome, Target};
pub use filter::{ActionMatch, AuditFilter, FilterInput};
pub use record::{record, record_all};
