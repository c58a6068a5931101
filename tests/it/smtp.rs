//! A real SMTP server for tests: `tests/smtp_sink.py` (aiosmtpd) as a child process.

use std::time::Duration;

use serde_json::Value;

use crate::python_server::PythonServer;

/// A running sink on 127.0.0.1 that stores each message as JSON; killed and removed on drop.
pub struct SmtpSink(PythonServer);

impl SmtpSink {
    /// Starts a sink on a free port with a fresh directory.
    pub fn start() -> Self {
        Self(PythonServer::start(
            "tests/smtp_sink.py",
            "smtp",
            "aiosmtpd: python3 -m pip install aiosmtpd (Debian: apt-get install python3-aiosmtpd)",
        ))
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// The `PORTCULLIS_SMTP_URL` for this sink (plain text on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.0.port())
    }

    /// What the sink does with the next messages: `accept`, `tempfail`, `permfail` or `hang`.
    pub fn set_mode(&self, mode: &str) {
        self.0.publish("mode", mode);
    }

    /// The stored messages, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        self.0.stored()
    }

    /// The messages once there are at least `count`, or whatever is there after `timeout`
    /// (a bound on waiting; the caller asserts on what it gets).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        self.0.wait_for(count, timeout).await
    }

    /// Stops the server (SIGTERM, then waits); the port refuses connections until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Starts the server again on the same port and directory (stored messages stay).
    pub fn restart(&mut self) {
        self.0.restart();
    }
}
