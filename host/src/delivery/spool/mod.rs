//! The durable spool: a write-ahead log of buffered events on local disk, so
//! that events survive a crash or a restart during an outage.
//!
//! Layout: one directory, locked by one process ([`lock`]); per stream
//! (target and payload kind) a chain of segment files ([`segment`]) of
//! checksummed frames ([`frame`]). Events are appended to their stream's
//! newest segment before they count as buffered. Once CloudWatch has accepted
//! (or the stage has dropped) a run of a stream's events, an ACK frame naming
//! that sequence range is appended to the segment holding them, and a segment
//! whose events are all resolved is deleted — in any order, so an event stuck
//! in a retried request pins only its own segment. An idle stream holds no
//! file at all. Segments are `max_bytes / 8` (64 KiB to 4 MiB), so the
//! budget is freed in steps of at most an eighth.
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

use crate::event::{PayloadKind, Target};

pub use frame::EventRef;
pub use recover::{Recovered, RecoveredEvent, RecoveryReport};

use lock::DirLock;
use segment::SegFile;

/// When the spool calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

/// Largest segment (a write batch larger than a segment gets one of its own).
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Smallest segment.
pub const MIN_SEGMENT_BYTES: u64 = 64 * 1024;

/// The segment size for a budget: an eighth of it, within the bounds above.
pub fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, SEGMENT_BYTES)
}

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
    file: SegFile,
    /// Sequence numbers of the events in this segment, ascending.
    seqs: Vec<u64>,
    /// Which of them are resolved.
    dead: Vec<bool>,
    dead_count: usize,
}

impl SegMeta {
    fn all_dead(&self) -> bool {
        self.dead_count == self.seqs.len()
    }
}

#[derive(Debug, Default)]
struct StreamLog {
    /// Oldest first; new events go to the last one.
    segments: VecDeque<SegMeta>,
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
    /// ACK frames not written yet: (stream, segment id, lo, hi).
    pending_acks: Vec<(StreamKey, u64, u64, u64)>,
    segment_bytes: u64,
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
            .and_then(|s| s.segments.back())
            .is_some_and(|h| h.file.len + frames as u64 <= self.segment_bytes);
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
        let roll = match self.streams.get(key).and_then(|s| s.segments.back()) {
            Some(h) => h.file.len > 0 && h.file.len + buf.len() as u64 > self.segment_bytes,
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
            let file = SegFile::create(&self.dir, id, &key_frame)?;
            self.next_id += 1;
            self.bytes += file.len;
            self.dir_unsynced = self.opts.sync != SyncPolicy::Never;
            self.streams
                .entry(key.clone())
                .or_default()
                .segments
                .push_back(SegMeta {
                    file,
                    seqs: Vec::new(),
                    dead: Vec::new(),
                    dead_count: 0,
                });
        }
        let stream = self.streams.get_mut(key).expect("stream has a segment");
        let head = stream.segments.back_mut().expect("stream has a segment");
        head.file.append(buf)?;
        head.seqs.extend(events.iter().map(|e| e.seq));
        head.dead.resize(head.seqs.len(), false);
        self.bytes += buf.len() as u64;
        self.events += events.len() as u64;
        if self.opts.sync != SyncPolicy::Never && !self.unsynced_ids.contains(&head.file.id) {
            self.unsynced_ids.push(head.file.id);
            self.unsynced.push(head.file.file.clone());
        }
        Ok(())
    }

    /// Records that every event of `key` with `lo ≤ seq ≤ hi` is resolved
    /// (delivered or dropped): deletes the segments that hold nothing else,
    /// and notes the range in the others at the next [`Spool::flush_acks`].
    pub fn ack(&mut self, key: &StreamKey, lo: u64, hi: u64) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let mut removed = Vec::new();
        let mut i = 0;
        while i < stream.segments.len() {
            let seg = &mut stream.segments[i];
            let from = seg.seqs.partition_point(|s| *s < lo);
            let to = seg.seqs.partition_point(|s| *s <= hi);
            let mut newly = 0;
            for d in &mut seg.dead[from..to] {
                if !*d {
                    *d = true;
                    newly += 1;
                }
            }
            seg.dead_count += newly;
            self.events -= newly as u64;
            if seg.all_dead() && !seg.seqs.is_empty() {
                let seg = stream.segments.remove(i).expect("index in range");
                self.bytes -= seg.file.len;
                removed.push(seg.file.id);
                continue;
            }
            if newly > 0 {
                let (id, lo, hi) = (seg.file.id, seg.seqs[from], seg.seqs[to - 1]);
                // Extend the last pending range when no event lies between.
                let before = from.checked_sub(1).map(|i| seg.seqs[i]);
                match self.pending_acks.last_mut() {
                    Some((k, sid, _, phi)) if k == key && *sid == id && before == Some(*phi) => {
                        *phi = hi
                    }
                    _ => self.pending_acks.push((key.clone(), id, lo, hi)),
                }
            }
            i += 1;
        }
        if stream.segments.is_empty() {
            self.streams.remove(key);
        }
        for id in removed {
            self.remove_segment(id);
        }
    }

    /// Writes the ACK frames noted since the last call. Losing them (a crash
    /// first) only means those events are sent again after the restart.
    pub fn flush_acks(&mut self) {
        for (key, id, lo, hi) in std::mem::take(&mut self.pending_acks) {
            let mut buf = Vec::with_capacity(32);
            frame::encode_ack(&mut buf, lo, hi);
            self.write_to(&key, Some(id), &buf);
        }
    }

    /// Notes that a request holding the events `[lo, hi]` of `key` is about
    /// to be sent (`refused = false`), or was refused by CloudWatch, so
    /// nothing of it was accepted (`refused = true`). Used at the next start
    /// to count events that may arrive twice.
    pub fn mark(&mut self, key: &StreamKey, lo: u64, hi: u64, refused: bool) {
        let mut buf = Vec::with_capacity(32);
        frame::encode_range(&mut buf, refused, lo, hi);
        self.write_to(key, None, &buf);
    }

    /// Appends a small frame to segment `id` of `key` (`None`: the newest).
    fn write_to(&mut self, key: &StreamKey, id: Option<u64>, buf: &[u8]) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let seg = match id {
            Some(id) => stream.segments.iter_mut().find(|s| s.file.id == id),
            None => stream.segments.back_mut(),
        };
        let Some(seg) = seg else {
            return; // deleted meanwhile: nothing left to note
        };
        match seg.file.append(buf) {
            Ok(()) => {
                self.bytes += buf.len() as u64;
                if self.opts.sync == SyncPolicy::Always && !self.unsynced_ids.contains(&seg.file.id)
                {
                    self.unsynced_ids.push(seg.file.id);
                    self.unsynced.push(seg.file.file.clone());
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
        if let Some(p) = self.unsynced_ids.iter().position(|i| *i == id) {
            self.unsynced_ids.remove(p);
            self.unsynced.remove(p);
        }
        self.dir_unsynced |= self.opts.sync == SyncPolicy::Always;
    }

    /// Everything appended since the last call, to be synced outside the lock.
    pub fn take_sync(&mut self) -> SyncJob {
        self.flush_acks();
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
        self.flush_acks();
        let heads: Vec<Arc<File>> = self
            .streams
            .values()
            .flat_map(|s| s.segments.iter().map(|g| g.file.file.clone()))
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

impl Drop for Spool {
    fn drop(&mut self) {
        self.flush_acks();
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
