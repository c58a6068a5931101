//! Open WebSockets per client address, so that one client cannot hold an unbounded number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts of open connections by client address.
#[derive(Default)]
pub(crate) struct Clients {
    open: Mutex<HashMap<String, usize>>,
}

/// One admitted connection; dropping it frees the place.
pub(super) struct Seat {
    clients: Arc<Clients>,
    key: String,
}

impl Clients {
    /// A place for one more connection from `key`, or `None` when it already holds `max`.
    pub(super) fn seat(self: &Arc<Self>, key: String, max: usize) -> Option<Seat> {
        let mut open = self.lock();
        let count = open.entry(key.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Seat {
            clients: self.clone(),
            key,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_client_and_freed_on_drop() {
        let clients = Arc::new(Clients::default());
        let first = clients.seat("a".to_owned(), 2);
        let second = clients.seat("a".to_owned(), 2);
        assert!(first.is_some() && second.is_some());
        assert!(clients.seat("a".to_owned(), 2).is_none(), "a third from a");
        assert!(clients.seat("b".to_owned(), 2).is_some(), "another client");
        drop(first);
        assert!(clients.seat("a".to_owned(), 2).is_some(), "a place was freed");
        drop(second);
        assert!(clients.lock().is_empty(), "no entry outlives its connections");
    }
}
