//! The security suite: the attacks an outside review ran against the gateway, kept as tests on both
//! backends so that every fix stays fixed. One file per front.

mod accounts;
pub(crate) mod credentials;
mod grants;
mod input;
mod limits;
mod relations;
mod websocket;
