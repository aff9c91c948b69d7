//! The one lifecycle value of a sink's delivery core: `Running`, then
//! `Draining` once the drain starts (everything is due at once, waits are
//! capped, open circuits are probed), then `Stopped` once it has ended (new
//! submissions are dropped as `shutdown`). The owner task changes it; every
//! sender watches it, so a change wakes every wait at once.

use tokio::sync::watch;

/// Where a delivery core is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Delivering as events come.
    Running,
    /// Flushing everything before the deadline.
    Draining,
    /// Done: nothing more is sent.
    Stopped,
}

/// The lifecycle, shared: the owner sets it, everyone else reads or waits.
#[derive(Debug)]
pub(crate) struct State {
    tx: watch::Sender<Lifecycle>,
}

impl State {
    /// A core that is running.
    pub fn new() -> State {
        State {
            tx: watch::Sender::new(Lifecycle::Running),
        }
    }

    /// The current value.
    pub fn get(&self) -> Lifecycle {
        *self.tx.borrow()
    }

    /// Moves on to `next` (never back).
    pub fn advance(&self, next: Lifecycle) {
        self.tx.send_if_modified(|now| {
            let moved = next > *now;
            if moved {
                *now = next;
            }
            moved
        });
    }

    /// True once the drain started.
    pub fn draining(&self) -> bool {
        self.get() != Lifecycle::Running
    }

    /// Resolves once the drain has started.
    pub async fn drain_started(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`; an error cannot happen while we borrow it.
        let _ = rx.wait_for(|l| *l != Lifecycle::Running).await;
    }
}
