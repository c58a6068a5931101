//! A real HTTP receiver for webhook tests: `tests/webhook_receiver.py` (stdlib `http.server`,
//! signatures checked with the Standard Webhooks reference library) as a child process.

use std::time::Duration;

use serde_json::Value;

use crate::python_server::PythonServer;

/// A running receiver on 127.0.0.1 that stores each request as JSON; killed and removed on drop.
///
/// Each stored request has `method`, `path`, `headers` (lower-cased names), `body` (text),
/// `status` (what it answered; null for `hang` and `reset`), `mode`, `received_at`,
/// `timestamp_header` and `verified` (`{secret: bool}` for each secret of
/// [`set_secrets`](Self::set_secrets), by the reference library).
pub struct WebhookReceiver(PythonServer);

impl WebhookReceiver {
    /// Starts a receiver on a free port with a fresh directory.
    pub fn start() -> Self {
        Self(PythonServer::start(
            "tests/webhook_receiver.py",
            "webhooks",
            "the Standard Webhooks reference library: python3 -m pip install standardwebhooks",
        ))
    }

    /// The endpoint URL to register (plain HTTP on loopback).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.0.port())
    }

    /// What the receiver answers from the next request on: `accept`, `fail`, `fail:N`, `gone`,
    /// `redirect`, `ratelimit:S`, `unavailable:S`, `hang`, `reset` or `huge`.
    pub fn set_mode(&self, mode: &str) {
        self.0.publish("mode", mode);
    }

    /// The `whsec_…` secrets each request is verified with from now on.
    pub fn set_secrets(&self, secrets: &[&str]) {
        self.0.publish("secrets", &secrets.join("\n"));
    }

    /// The stored requests, in order of arrival.
    pub fn requests(&self) -> Vec<Value> {
        self.0.stored()
    }

    /// The requests once there are at least `count`, or whatever is there after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        self.0.wait_for(count, timeout).await
    }

    /// Stops the receiver; the port refuses connections until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Starts it again on the same port (stored requests, mode and secrets stay).
    pub fn restart(&mut self) {
        self.0.restart();
    }
}
