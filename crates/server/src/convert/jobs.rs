//! Which rooms have a document being converted, and how many conversions run at once.
//!
//! A conversion keeps one core busy for seconds (LibreOffice, then poppler), so the server runs
//! one at a time and lets the rest wait for their turn; a room converts one document at a time
//! (Plug-N-Meet answers 409 to a second upload while one is in progress, and so do we).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::Converter;

/// The server's conversions: its converter, the rooms converting now, one slot to run in.
#[derive(Debug)]
pub struct Jobs {
    converter: Converter,
    rooms: Mutex<HashSet<String>>,
    slots: Semaphore,
}

/// A room's claim on converting one document; released when dropped.
#[derive(Debug)]
pub struct Claim {
    jobs: Arc<Jobs>,
    room: String,
}

impl Jobs {
    /// Conversions with `converter`, `parallel` at a time (at least one).
    pub fn new(converter: Converter, parallel: usize) -> Self {
        Self {
            converter,
            rooms: Mutex::new(HashSet::new()),
            slots: Semaphore::new(parallel.max(1)),
        }
    }

    pub fn converter(&self) -> &Converter {
        &self.converter
    }

    /// Claims `room` for a conversion; `None` while one runs there already.
    pub fn claim(self: &Arc<Self>, room: &str) -> Option<Claim> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.insert(room.to_owned()).then(|| Claim {
            jobs: self.clone(),
            room: room.to_owned(),
        })
    }

    /// Waits for a turn to run (the permit is the turn).
    pub async fn turn(&self) -> SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the conversion semaphore is never closed")
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut rooms = self.jobs.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.remove(&self.room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_converts_one_document_at_a_time_and_may_again_when_it_is_done() {
        let jobs = Arc::new(Jobs::new(Converter::default(), 1));
        let a = jobs.claim("a").expect("the first claim of a room");
        assert!(jobs.claim("a").is_none(), "a second claim while one runs");
        let b = jobs.claim("b").expect("another room is not held up");
        drop(a);
        assert!(jobs.claim("a").is_some(), "claimed again once released");
        drop(b);
    }

    #[tokio::test]
    async fn conversions_take_turns() {
        let jobs = Jobs::new(Converter::default(), 1);
        let first = jobs.turn().await;
        assert!(jobs.slots.try_acquire().is_err(), "one runs at a time");
        drop(first);
        assert!(jobs.slots.try_acquire().is_ok());
    }
}
