//! Leaving a load balancer's rotation without losing anyone: on a shutdown signal `/readyz` turns
//! 503 at once, the gateway keeps serving while the balancer notices, then WebSockets are closed
//! with 1012 (service restart: reconnect, and resume after the last cursor) before the listener
//! stops and in-flight requests finish.

use tokio::sync::watch;

/// Where a shutdown stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Serving,
    /// Not ready (so balancers stop sending), still serving what arrives.
    Draining,
    /// WebSockets close; the listener stops next.
    Closing,
}

/// The shutdown stage every handler and connection of this process can see.
pub(crate) struct Drain {
    stage: watch::Sender<Stage>,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            stage: watch::Sender::new(Stage::Serving),
        }
    }
}

impl Drain {
    pub(crate) fn stage(&self) -> Stage {
        *self.stage.borrow()
    }

    /// Changes as the shutdown moves on.
    pub(crate) fn watch(&self) -> watch::Receiver<Stage> {
        self.stage.subscribe()
    }

    pub(crate) fn advance(&self, to: Stage) {
        self.stage.send_if_modified(|stage| {
            let later = to > *stage;
            if later {
                *stage = to;
            }
            later
        });
    }
}

/// The close code that tells a WebSocket client to reconnect (elsewhere) and resume.
pub(crate) const RESTART_CODE: u16 = 1012;
pub(crate) const RESTART_REASON: &str =
    "the gateway is restarting: reconnect and resume after your last cursor";
