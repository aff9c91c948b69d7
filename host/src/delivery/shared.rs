//! What a core's handle, its owner task and its senders share: the
//! messages the owner is told, the gauges it publishes, the read-mostly
//! state every part reads without waiting on I/O, and what a drain reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::event::Target;
use crate::ledger::{DropReason, Ledger};

use super::batch::BatchKey;
use super::config::DeliveryConfig;
use super::health::HealthState;
use super::item::Item;
use super::rate::AdaptiveRate;
use super::sink::Sink;
use super::spool::SpoolStats;
use super::{buffer, inbox, lifecycle, policy, spool};

/// What [`Delivery::drain`] could and could not deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Time the drain took.
    pub elapsed: Duration,
    /// True when everything buffered was delivered (or dropped for a reason
    /// other than the deadline) before the deadline.
    pub completed: bool,
    /// Events accepted during the drain.
    pub delivered: u64,
    /// Events not delivered because the deadline passed (counted as `shutdown` drops).
    pub undelivered: u64,
    /// Undelivered events per job.
    pub undelivered_per_job: BTreeMap<Arc<str>, u64>,
    /// Undelivered events per target.
    pub undelivered_per_target: BTreeMap<Target, u64>,
    /// Events dropped during the drain for any other reason, by reason.
    pub dropped_other: BTreeMap<DropReason, u64>,
    /// Events not delivered before the deadline that stay in the spool and
    /// are sent after the next start (not drops).
    pub spooled: u64,
    /// The spool's state after the drain (`None` without `spool_dir`).
    pub spool: Option<SpoolStats>,
}

/// Sets the in-flight bound to `limit`: permits are added at once; removed
/// ones are taken out as requests give them back.
pub(super) fn resize(sh: &Arc<Shared>, limit: usize) {
    let old = sh.in_flight_limit.swap(limit, Ordering::AcqRel);
    if limit > old {
        sh.in_flight.add_permits(limit - old);
    } else if limit < old {
        let extra = old - limit;
        let gone = sh.in_flight.forget_permits(extra);
        if gone < extra {
            let sh = sh.clone();
            tokio::spawn(async move {
                if let Ok(p) = sh.in_flight.acquire_many((extra - gone) as u32).await {
                    p.forget();
                }
            });
        }
    }
}

/// What the owner task is told (submissions come through the inbox).
#[derive(Debug)]
pub(crate) enum Msg {
    /// New buffer limits from a reload (`journaled` is kept as it was).
    Retune(buffer::Limits),
    /// Answer once every submission made before this is taken in.
    Settle(oneshot::Sender<()>),
    /// A sender is done with its chunk of `key`: everything resolved but
    /// `undelivered`, which the drain's deadline cut short.
    Sent {
        key: BatchKey,
        undelivered: Vec<Item>,
    },
    /// A request for `[lo, hi]` of `key` is about to go out (`refused`:
    /// it was refused); `durable` answers once the note is durable.
    Mark {
        key: BatchKey,
        lo: u64,
        hi: u64,
        refused: bool,
        durable: Option<oneshot::Sender<()>>,
    },
    /// What the spool's thread reports.
    Io(spool::io::Report),
    /// Flush everything within `deadline`, then stop and report.
    Drain {
        deadline: Duration,
        reply: oneshot::Sender<DrainReport>,
    },
}

/// What the owner publishes for readers that must never wait for it.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub events: AtomicU64,
    pub bytes: AtomicU64,
    pub spool: Mutex<Option<SpoolStats>>,
}

/// What the handle, the owner and the senders share (read-only, or
/// internally synchronised without I/O).
pub(crate) struct Shared {
    /// The sink's name (metrics, logs).
    pub name: Arc<str>,
    /// The settings the core started with (those a reload may not change).
    pub cfg: DeliveryConfig,
    /// The adapter; a reload may swap it (a sender keeps the one it started a chunk with).
    pub(super) sink: RwLock<Arc<dyn Sink>>,
    pub ledger: Ledger,
    pub health: HealthState,
    pub rate: AdaptiveRate,
    pub policy: RwLock<policy::Policy>,
    pub in_flight: Semaphore,
    /// The in-flight bound in force (the semaphore's size).
    pub in_flight_limit: std::sync::atomic::AtomicUsize,
    pub state: lifecycle::State,
    /// Cancelled at the drain deadline: senders give their events back.
    pub cancel: CancellationToken,
    pub gauges: Gauges,
    /// Submissions not yet taken in by the owner.
    pub inbox: inbox::Inbox,
    /// Whether send markers go to a spool, and must be durable before a send.
    pub marks: Marks,
}

/// Where a sender notes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    /// No spool.
    None,
    /// In the spool, written before the request goes out.
    Written,
    /// In the spool, durable before the request goes out (`spool_sync = "always"`).
    Durable,
}

impl Shared {
    /// True once the drain started.
    pub fn draining(&self) -> bool {
        self.state.draining()
    }

    /// The adapter in force.
    pub fn sink(&self) -> Arc<dyn Sink> {
        self.sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The retry policy in force.
    pub fn policy(&self) -> policy::Policy {
        *self
            .policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
