//! The policy engine: Cedar policies and roles decide every gateway operation and integrators'
//! own authorization requests.

pub mod actions;
mod compile;
pub mod diagnostics;
pub mod engine;
mod entities;
pub mod guard;
pub mod schema;

pub use actions::Action;
pub use engine::Engine;
pub use guard::Resource;
