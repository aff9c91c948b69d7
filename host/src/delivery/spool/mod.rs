//! The durable spool: a write-ahead log of buffered events on local disk, so
//! that events survive a crash or a restart during an outage.
//!
//! Layout: one directory, locked by one process ([`lock`]); per stream
//! (target and payload kind) a chain of segment files ([`segment`]) of
//! checksummed frames ([`frame`]). Events are appended to their stream's head
//! segment before they count as buffered; once CloudWatch has accepted (or
//! the stage has dropped) every event of a stream below some sequence number,
//! an ACK frame records that floor and whole segments below it are deleted.
//! Streams are acknowledged in order (one worker per stream, one request at a
//! time), so a floor per stream is all the bookkeeping there is, and an idle
//! stream holds no file at all.
//!
//! Durability follows [`SyncPolicy`]: appends are plain `write`s made under
//! the stage's lock; `fdatasync` runs outside it, on the caller's syncer,
//! through a [`SyncJob`] that covers every append made so far (group commit).
//!
//! On open ([`recover`]) every segment is read back, damage is skipped and
//! counted, and the unacknowledged events are returned per stream in order.
//! The caller appends them again (to new segments) and then calls
//! [`Spool::retire_recovered`], which deletes the old files: each start
//! leaves a spool free of damage and of dead space.

pub mod frame;
pub mod lock;
mod recover;
pub mod segment;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::event::{PayloadKind, Target};

pub use frame::EventRef;
pub use recover::{Recovered, RecoveredEvent, RecoveryReport};

use lock::DirLock;
use segment::Head;

/// When the spool calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Once per write batch (a guest run's events, or several runs committed
    /// together) before its events may be sent. Acknowledgements are not
    /// synced: after a power loss some delivered events may be sent again.
    #[default]
    Batch,
    /// As `batch`, and acknowledgements, send markers and deletions are
    /// synced too, so even a power loss resends as little as possible.
    Always,
    /// Never: the kernel writes data back when it likes. Survives a crash
    /// of cwpub (SIGKILL, OOM kill), not a crash of the machine.
    Never,
}

impl SyncPolicy {
    /// Stable snake_case name, as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncPolicy::Batch => "batch",
            SyncPolicy::Always => "always",
            SyncPolicy::Never => "never",
        }
    }
}

/// One stream of the spool: where its events go and how they are read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// The log group and stream.
    pub target: Arc<Target>,
    /// JSON log lines or EMF documents.
    pub kind: PayloadKind,
}

/// How a spool is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// Most bytes the segment files may take together.
    pub max_bytes: u64,
    /// When to sync.
    pub sync: SyncPolicy,
}

/// Largest segment (a write batch larger than this gets a segment of its own).
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Counters and gauges of a spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of segment files (including files from before the last start
    /// until their events are spooled again).
    pub bytes: u64,
    /// Events in the spool not yet acknowledged.
    pub events: u64,
    /// Segment files.
    pub segments: u64,
    /// Events recovered at start and queued again.
    pub replayed: u64,
    /// Damaged regions skipped at start (each lost at least one record).
    pub corrupt_records: u64,
    /// Bytes in those regions and in quarantined segments.
    pub corrupt_bytes: u64,
    /// Files in the directory that are not the spool's (left alone).
    pub foreign_files: u64,
    /// Replayed events that were in a request whose answer was lost in a
    /// crash: CloudWatch may already hold them, so they may arrive twice.
    pub possible_duplicates: u64,
    /// Failed writes or deletions (the events stay in memory, not on disk).
    pub io_errors: u64,
}

#[derive(Debug)]
struct SegMeta {
    id: u64,
    bytes: u64,
    /// Sequence numbers of the events in this segment, ascending.
    seqs: Vec<u64>,
    /// How many of `seqs` are below the stream's floor.
    dead: usize,
}

#[derive(Debug, Default)]
struct StreamLog {
    /// Oldest first; the last one is the head while `head` is set.
    segments: VecDeque<SegMeta>,
    head: Option<Head>,
    floor: u64,
}

/// Work for the syncer: `fdatasync` of every file appended to since the
/// last job, then of the directory if files were created or removed.
#[derive(Debug, Default)]
pub struct SyncJob {
    files: Vec<Arc<File>>,
    dir: Option<File>,
    /// Every event with a sequence number below this is durable once the job ran.
    pub durable_below: u64,
}

impl SyncJob {
    /// Runs the syncs (blocking; call off the async runtime).
    pub fn run(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if let Some(d) = &self.dir {
            d.sync_all()?;
        }
        Ok(())
    }

    /// True when there is nothing to sync.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dir.is_none()
    }
}

/// An open, locked spool directory. See the module doc.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    dir_handle: Option<File>,
    _lock: DirLock,
    opts: SpoolOptions,
    streams: HashMap<StreamKey, StreamLog>,
    next_id: u64,
    /// Bytes of live-generation segments.
    bytes: u64,
    events: u64,
    /// Segments from before this start, deleted by `retire_recovered`.
    recovered: Vec<(PathBuf, u64)>,
    unsynced: Vec<Arc<File>>,
    unsynced_ids: Vec<u64>,
    dir_unsynced: bool,
    /// Highest sequence number appended so far, plus one.
    appended_below: u64,
    stats: SpoolStats,
    scratch: Vec<u8>,
}

impl Spool {
    /// Opens (or creates) and locks the spool directory and reads back what
    /// a previous process left. Damage is skipped and counted, never fatal;
    /// only an unusable directory (permissions, locked by another process)
    /// is an error.
    pub fn open(opts: SpoolOptions) -> std::io::Result<(Spool, Recovered)> {
        recover::open(opts)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configured byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.opts.max_bytes
    }

    /// The sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.opts.sync
    }

    /// The sequence number the next appended event must have at least.
    pub fn next_seq(&self) -> u64 {
        self.appended_below
    }

    /// Bytes of the current generation's segment files (what the budget limits).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes appending `events` to `key` will add, at most.
    pub fn append_cost<'a>(
        &self,
        key: &StreamKey,
        events: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> u64 {
        let frames: usize = events
            .into_iter()
            .map(|(job, msg)| frame::event_len(job, msg))
            .sum();
        let head_room = self
            .streams
            .get(key)
            .and_then(|s| s.head.as_ref())
            .is_some_and(|h| h.len + frames as u64 <= SEGMENT_BYTES);
        frames as u64 + if head_room { 0 } else { new_segment_len(key) }
    }

    /// Appends `events` (ascending sequence numbers, all above any appended
    /// before) to the stream `key`, in one write. They are on disk (in the
    /// page cache) when this returns and durable after the next [`SyncJob`].
    /// On error nothing was appended.
    pub fn append(&mut self, key: &StreamKey, events: &[EventRef<'_>]) -> std::io::Result<()> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        for e in events {
            frame::encode_event(&mut buf, *e);
        }
        let res = self.write_events(key, &buf, events);
        self.scratch = buf;
        match res {
            Ok(()) => {
                self.appended_below = self.appended_below.max(last.seq + 1);
                Ok(())
            }
            Err(e) => {
                self.stats.io_errors += 1;
                Err(e)
            }
        }
    }

    fn write_events(
        &mut self,
        key: &StreamKey,
        buf: &[u8],
        events: &[EventRef<'_>],
    ) -> std::io::Result<()> {
        let roll = match self.streams.get(key).and_then(|s| s.head.as_ref()) {
            Some(h) => h.len + buf.len() as u64 > SEGMENT_BYTES,
            None => true,
        };
        if roll {
            let mut key_frame = Vec::new();
            frame::encode_key(
                &mut key_frame,
                key.kind,
                &key.target.log_group,
                &key.target.log_stream,
            );
            let id = self.next_id;
            let head = Head::create(&self.dir, id, &key_frame)?;
            self.next_id += 1;
            self.bytes += head.len;
            self.dir_unsynced = self.opts.sync != SyncPolicy::Never;
            let stream = self.streams.entry(key.clone()).or_default();
            stream.segments.push_back(SegMeta {
                id,
                bytes: head.len,
                seqs: Vec::new(),
                dead: 0,
            });
            stream.head = Some(head);
        }
        let stream = self.streams.get_mut(key).expect("stream has a head");
        let head = stream.head.as_mut().expect("stream has a head");
        head.append(buf)?;
        let meta = stream.segments.back_mut().expect("head segment");
        meta.bytes += buf.len() as u64;
        meta.seqs.extend(events.iter().map(|e| e.seq));
        self.bytes += buf.len() as u64;
        self.events += events.len() as u64;
        if self.opts.sync != SyncPolicy::Never && !self.unsynced_ids.contains(&head.id) {
            self.unsynced_ids.push(head.id);
            self.unsynced.push(head.file.clone());
        }
        Ok(())
    }

    /// Records that every event of `key` with a sequence number below
    /// `floor` is resolved (delivered or dropped): deletes the segments that
    /// hold nothing else and notes the floor in the head segment.
    pub fn ack(&mut self, key: &StreamKey, floor: u64) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if floor <= stream.floor {
            return;
        }
        stream.floor = floor;
        let mut removed = Vec::new();
        while let Some(front) = stream.segments.front_mut() {
            let dead = front.seqs.partition_point(|s| *s < floor);
            self.events -= (dead - front.dead) as u64;
            front.dead = dead;
            if dead < front.seqs.len() {
                break;
            }
            let seg = stream.segments.pop_front().expect("front exists");
            if stream.head.as_ref().is_some_and(|h| h.id == seg.id) {
                stream.head = None;
            }
            self.bytes -= seg.bytes;
            removed.push(seg.id);
        }
        let partial = stream.segments.front().is_some_and(|s| s.dead > 0);
        if stream.segments.is_empty() {
            self.streams.remove(key);
        } else if partial {
            let mut buf = Vec::with_capacity(24);
            frame::encode_ack(&mut buf, floor);
            self.write_marker(key, &buf);
        }
        for id in removed {
            self.remove_segment(id);
        }
    }

    /// Notes that a request holding the events `[lo, hi]` of `key` is about
    /// to be sent (`refused = false`), or was refused by CloudWatch, so
    /// nothing of it was accepted (`refused = true`). Used at the next start
    /// to count events that may arrive twice.
    pub fn mark(&mut self, key: &StreamKey, lo: u64, hi: u64, refused: bool) {
        let mut buf = Vec::with_capacity(32);
        frame::encode_range(&mut buf, refused, lo, hi);
        self.write_marker(key, &buf);
    }

    fn write_marker(&mut self, key: &StreamKey, buf: &[u8]) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Some(head) = stream.head.as_mut() else {
            return;
        };
        match head.append(buf) {
            Ok(()) => {
                if let Some(meta) = stream.segments.back_mut() {
                    meta.bytes += buf.len() as u64;
                }
                self.bytes += buf.len() as u64;
                if self.opts.sync == SyncPolicy::Always && !self.unsynced_ids.contains(&head.id) {
                    self.unsynced_ids.push(head.id);
                    self.unsynced.push(head.file.clone());
                }
            }
            Err(e) => {
                self.stats.io_errors += 1;
                tracing::warn!(dir = %self.dir.display(), error = %e, "spool: could not write a marker; after a crash some delivered events may be sent again");
            }
        }
    }

    fn remove_segment(&mut self, id: u64) {
        let path = self.dir.join(segment::file_name(id));
        if let Err(e) = std::fs::remove_file(&path) {
            self.stats.io_errors += 1;
            tracing::warn!(path = %path.display(), error = %e, "spool: could not delete a delivered segment; it is skipped at the next start");
        }
        self.unsynced_ids.retain(|i| *i != id);
        self.dir_unsynced |= self.opts.sync == SyncPolicy::Always;
    }

    /// Everything appended since the last call, to be synced outside the lock.
    pub fn take_sync(&mut self) -> SyncJob {
        self.unsynced_ids.clear();
        let dir = if std::mem::take(&mut self.dir_unsynced) {
            self.dir_handle.as_ref().and_then(|d| d.try_clone().ok())
        } else {
            None
        };
        SyncJob {
            files: std::mem::take(&mut self.unsynced),
            dir,
            durable_below: self.appended_below,
        }
    }

    /// Every open segment and the directory, whatever the policy asked for
    /// so far (nothing with [`SyncPolicy::Never`]): for a clean stop.
    pub fn take_sync_all(&mut self) -> SyncJob {
        if self.opts.sync == SyncPolicy::Never {
            return SyncJob::default();
        }
        self.unsynced.clear();
        self.unsynced_ids.clear();
        self.dir_unsynced = true;
        let heads: Vec<Arc<File>> = self
            .streams
            .values()
            .filter_map(|s| s.head.as_ref().map(|h| h.file.clone()))
            .collect();
        let mut job = self.take_sync();
        job.files = heads;
        job
    }

    /// Deletes the segment files found at start; call once their events have
    /// been appended again and synced.
    pub fn retire_recovered(&mut self) {
        for (path, _) in std::mem::take(&mut self.recovered) {
            if let Err(e) = std::fs::remove_file(&path) {
                self.stats.io_errors += 1;
                tracing::warn!(path = %path.display(), error = %e, "spool: could not delete a replayed segment; its events may be replayed twice at the next start");
            }
        }
        self.dir_unsynced |= self.opts.sync != SyncPolicy::Never;
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            bytes: self.bytes + self.recovered.iter().map(|(_, b)| b).sum::<u64>(),
            events: self.events,
            segments: (self
                .streams
                .values()
                .map(|s| s.segments.len())
                .sum::<usize>()
                + self.recovered.len()) as u64,
            ..self.stats
        }
    }

    /// Counts events spooled again at start (set by the caller, which may
    /// drop some of them for the memory budget).
    pub fn note_replayed(&mut self, n: u64) {
        self.stats.replayed += n;
    }
}

/// Bytes of a fresh segment before its first event: header and KEY frame.
fn new_segment_len(key: &StreamKey) -> u64 {
    (frame::HEADER_LEN
        + frame::FRAME_OVERHEAD
        + 1
        + 1
        + 2
        + key.target.log_group.len()
        + 2
        + key.target.log_stream.len()) as u64
}

#[cfg(test)]
mod tests;
