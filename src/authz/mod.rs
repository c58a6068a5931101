//! The policy engine: Cedar policies and roles decide every gateway operation and integrators'
//! own authorization requests.

pub mod actions;
pub mod assignments;
pub mod authorize;
pub mod cedar_json;
mod compile;
pub mod diagnostics;
pub mod engine;
mod entities;
mod entity_cache;
pub mod escalations;
pub mod grants;
pub mod guard;
pub mod policies;
mod principal_sets;
pub mod roles;
pub mod schema;
pub mod schemas;
mod slice;
mod supplied;

pub use actions::Action;
pub use engine::Engine;
pub use guard::Resource;
