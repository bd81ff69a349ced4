//! The in-process event bus behind the SSE stream (`coordinator.md` §9):
//! a global `seq`, a ring buffer for `events/recent`, and a broadcast
//! channel subscribers read from. Events are published after the database
//! change they announce has committed.

use std::collections::VecDeque;
use std::sync::Mutex;

use auspex_wire::json::Value;
use tokio::sync::broadcast;

use crate::util::iso_now;

/// Events kept for `events/recent`.
pub const RING_CAPACITY: usize = 2000;
/// Per-subscriber queue length (the real bus drops the oldest beyond 256).
pub const SUBSCRIBER_QUEUE: usize = 256;

/// One published event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Global sequence number (1, 2, …; shared by all experiments).
    pub seq: u64,
    /// `experiment.status`, `unit.progress`, `receipt.issued`, …
    pub event_type: String,
    /// The experiment, or `None` for network-wide events.
    pub experiment_id: Option<String>,
    /// The payload (an object).
    pub data: Value,
    /// When it was published (ISO 8601, `+00:00`).
    pub at: String,
}

/// The bus.
#[derive(Debug)]
pub struct EventBus {
    ring: Mutex<(u64, VecDeque<Event>)>,
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        EventBus {
            ring: Mutex::new((0, VecDeque::with_capacity(RING_CAPACITY))),
            tx,
        }
    }

    /// Publishes an event and returns its `seq`.
    pub fn publish(&self, event_type: &str, experiment_id: Option<&str>, data: Value) -> u64 {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.0 += 1;
        let event = Event {
            seq: ring.0,
            event_type: event_type.to_owned(),
            experiment_id: experiment_id.map(str::to_owned),
            data,
            at: iso_now(),
        };
        if ring.1.len() == RING_CAPACITY {
            ring.1.pop_front();
        }
        ring.1.push_back(event.clone());
        // No subscribers is not an error.
        let _ = self.tx.send(event);
        ring.0
    }

    /// A live subscription (lagging subscribers lose the oldest events).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Events after `seq` still in the ring (oldest first), optionally of
    /// one experiment: the `Last-Event-ID` replay.
    pub fn since(&self, experiment_id: Option<&str>, seq: u64) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.1
            .iter()
            .filter(|e| e.seq > seq)
            .filter(|e| experiment_id.is_none_or(|id| e.experiment_id.as_deref() == Some(id)))
            .cloned()
            .collect()
    }

    /// The most recent events (oldest first), optionally of one experiment.
    pub fn recent(&self, experiment_id: Option<&str>, limit: usize) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Event> = ring
            .1
            .iter()
            .rev()
            .filter(|e| experiment_id.is_none_or(|id| e.experiment_id.as_deref() == Some(id)))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}
