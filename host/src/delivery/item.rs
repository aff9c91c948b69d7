//! One buffered event, as the core holds it and a sink receives it, and
//! what it costs the memory budget.

use std::sync::Arc;

/// What one buffered event costs the memory budget beyond its message bytes.
pub const ITEM_OVERHEAD: usize = 26;

/// One buffered event with the job that produced it (for accounting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The job that produced the event.
    pub job: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The message, sent byte for byte.
    pub message: String,
    /// Arrival sequence number, global across queues (for drop-oldest).
    pub seq: u64,
}

impl Item {
    /// The bytes this event counts for in the memory budget.
    #[inline]
    pub fn size(&self) -> usize {
        self.message.len() + ITEM_OVERHEAD
    }
}
