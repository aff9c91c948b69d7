//! The durable spool: a write-ahead log of buffered events on local disk, so
//! that events survive a crash or a restart during an outage.
//!
//! Layout: one directory per sink, locked by one process ([`lock`]); per
//! stream (target and payload kind) a chain of segment files ([`segment`])
//! of checksummed frames ([`frame`]). Events are appended to their stream's
//! newest segment before they may be sent. Once the sink has accepted (or
//! the core has dropped) a run of a stream's events, an ACK frame naming that
//! sequence range is appended to the segment holding them, and a segment
//! whose events are all resolved is deleted — in any order, so an event stuck
//! in a retried request pins only its own segment. An idle stream holds no
//! file at all. Segments are `max_bytes / 8` (64 KiB to 4 MiB), so the
//! budget is freed in steps of at most an eighth.
//!
//! [`Spool`] is the bookkeeping, owned by the delivery core's owner task: it
//! decides every write (which file, at which offset) and queues it as an
//! [`io::Op`]; it never touches the disk. The spool's own thread ([`io`])
//! carries the ops out in order, syncs them in groups as [`SyncPolicy`] asks
//! and reports back, so no disk work ever runs on an async worker or under
//! a lock anyone waits on, and a stalled disk stalls only the spool.
//!
//! On open ([`recover`], blocking, off the async runtime) every segment is
//! read back, damage is skipped and counted, and the unacknowledged events
//! are returned per stream in order. The owner appends them again (to new
//! segments) and, once those are durable, the old files are deleted
//! ([`Spool::retire_recovered`]): each start leaves a spool free of damage
//! and of dead space.

pub mod frame;
pub mod io;
pub mod lock;
mod recover;
pub mod segment;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::event::{PayloadKind, Target};

pub use frame::EventRef;
pub use recover::{Recovered, RecoveredEvent, RecoveryReport};

use io::Op;
use lock::DirLock;

/// When the spool calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Once per write batch (a guest run's events, or several runs committed
    /// together) before its events may be sent. Acknowledgements and send
    /// markers are not synced of their own: after a power loss some
    /// delivered events may be sent again.
    #[default]
    Batch,
    /// As `batch`, and acknowledgements and deletions are synced too, and a
    /// request's send marker is durable before the request goes out, so even
    /// a power loss resends as little as possible and counts what it may resend.
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

/// Why a spool directory could not be used, with the fix when it is a
/// matter of permissions or a read-only file system (a container without a
/// volume).
pub fn unusable_dir(dir: &Path, e: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    let fix = match e.kind() {
        PermissionDenied | ReadOnlyFilesystem => {
            "; give cwpub a directory it can write there (in a container: a writable volume \
             owned by its user), or remove spool_dir to keep events in memory only"
        }
        _ => "",
    };
    anyhow::anyhow!("spool_dir {}: {e}{fix}", dir.display())
}

/// One stream of the spool: where its events go and how they are read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// Where the events go.
    pub target: Arc<Target>,
    /// JSON log lines or EMF documents.
    pub kind: PayloadKind,
}

/// How a spool is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The sink the spool belongs to (the targets read back are its).
    pub sink: Arc<str>,
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
    /// Segment files that could not be read at start (skipped, left in place).
    pub unreadable_segments: u64,
    /// Replayed events that were in a request whose answer was lost in a
    /// crash: the service may already hold them, so they may arrive twice.
    pub possible_duplicates: u64,
    /// Failed writes, syncs or deletions (events whose write failed are
    /// sent from memory).
    pub io_errors: u64,
}

#[derive(Debug)]
struct SegMeta {
    id: u64,
    /// Bytes planned so far (the offset of the next write).
    len: u64,
    /// Sequence numbers of the events in this segment, ascending.
    seqs: Vec<u64>,
    /// Which of them are resolved.
    dead: Vec<bool>,
    dead_count: usize,
    /// A write to it failed: it takes no more.
    broken: bool,
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

/// An open, locked spool directory's bookkeeping. See the module doc.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: DirLock,
    opts: SpoolOptions,
    streams: HashMap<StreamKey, StreamLog>,
    next_id: u64,
    /// Bytes of live-generation segments.
    bytes: u64,
    events: u64,
    /// Segments from before this start, deleted by `retire_recovered`.
    recovered: Vec<(PathBuf, u64)>,
    /// Highest sequence number appended so far, plus one.
    appended_below: u64,
    /// ACK frames not written yet: (stream, segment id, lo, hi).
    pending_acks: Vec<(StreamKey, u64, u64, u64)>,
    segment_bytes: u64,
    stats: SpoolStats,
    /// Disk work planned and not yet handed to the spool's thread.
    ops: Vec<Op>,
}

impl Spool {
    /// Opens (or creates) and locks the spool directory and reads back what
    /// a previous process left (blocking: call off the async runtime).
    /// Damage and unreadable files are skipped and counted, never fatal;
    /// only an unusable directory (permissions, locked by another process)
    /// is an error.
    pub fn open(opts: SpoolOptions, fs: &dyn io::SpoolFs) -> std::io::Result<(Spool, Recovered)> {
        recover::open(opts, fs)
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

    /// The disk work planned since the last call, in order, for the spool's thread.
    pub fn take_ops(&mut self) -> Vec<Op> {
        self.flush_acks();
        std::mem::take(&mut self.ops)
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
            .head(key)
            .is_some_and(|h| h.len + frames as u64 <= self.segment_bytes);
        frames as u64 + if head_room { 0 } else { new_segment_len(key) }
    }

    /// The segment new events of `key` go to, if it can take them.
    fn head(&self, key: &StreamKey) -> Option<&SegMeta> {
        self.streams
            .get(key)
            .and_then(|s| s.segments.back())
            .filter(|h| !h.broken)
    }

    /// Plans appending `events` (ascending sequence numbers, all above any
    /// appended before) to the stream `key`, in one write, followed by a
    /// request to report them durable.
    pub fn append(&mut self, key: &StreamKey, events: &[EventRef<'_>]) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let mut buf = Vec::with_capacity(
            events
                .iter()
                .map(|e| frame::event_len(e.job, e.message))
                .sum(),
        );
        for e in events {
            frame::encode_event(&mut buf, *e);
        }
        let roll = match self.head(key) {
            Some(h) => h.len > 0 && h.len + buf.len() as u64 > self.segment_bytes,
            None => true,
        };
        if roll {
            let mut bytes = frame::header().to_vec();
            frame::encode_key(&mut bytes, key.kind, &key.target.labels);
            let id = self.next_id;
            self.next_id += 1;
            self.bytes += bytes.len() as u64;
            self.streams
                .entry(key.clone())
                .or_default()
                .segments
                .push_back(SegMeta {
                    id,
                    len: bytes.len() as u64,
                    seqs: Vec::new(),
                    dead: Vec::new(),
                    dead_count: 0,
                    broken: false,
                });
            self.ops.push(Op::Create { id, bytes });
        }
        let stream = self.streams.get_mut(key).expect("stream has a segment");
        let head = stream.segments.back_mut().expect("stream has a segment");
        head.seqs.extend(events.iter().map(|e| e.seq));
        head.dead.resize(head.seqs.len(), false);
        let offset = head.len;
        head.len += buf.len() as u64;
        self.bytes += buf.len() as u64;
        self.events += events.len() as u64;
        self.appended_below = self.appended_below.max(last.seq + 1);
        self.ops.push(Op::Write {
            id: head.id,
            offset,
            bytes: buf,
            events: Some((key.clone(), first.seq, last.seq)),
            durable: self.opts.sync != SyncPolicy::Never,
        });
        self.ops.push(Op::Durable {
            below: self.appended_below,
        });
    }

    /// The spool's thread could not write the events `[lo, hi]` of `key`
    /// to segment `id`: they are not in the spool (the caller sends them
    /// from memory), and that segment takes no more writes.
    pub fn write_failed(&mut self, key: &StreamKey, id: u64, lo: u64, hi: u64) {
        self.stats.io_errors += 1;
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Some(pos) = stream.segments.iter().position(|s| s.id == id) else {
            return;
        };
        let seg = &mut stream.segments[pos];
        seg.broken = true;
        let from = seg.seqs.partition_point(|s| *s < lo);
        let to = seg.seqs.partition_point(|s| *s <= hi);
        let live = seg.dead[from..to].iter().filter(|d| !**d).count();
        self.events -= live as u64;
        seg.dead_count -= (to - from) - live;
        seg.seqs.drain(from..to);
        seg.dead.drain(from..to);
        if seg.all_dead() {
            let seg = stream.segments.remove(pos).expect("index in range");
            self.bytes -= seg.len;
            self.ops.push(Op::Remove { id: seg.id });
            if stream.segments.is_empty() {
                self.streams.remove(key);
            }
        }
    }

    /// Counts a failed piece of disk work other than an event write.
    pub fn io_failed(&mut self) {
        self.stats.io_errors += 1;
    }

    /// Records that every event of `key` with `lo ≤ seq ≤ hi` is resolved
    /// (delivered or dropped): deletes the segments that hold nothing else,
    /// and notes the range in the others (written with the next ops).
    pub fn ack(&mut self, key: &StreamKey, lo: u64, hi: u64) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
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
                self.bytes -= seg.len;
                self.ops.push(Op::Remove { id: seg.id });
                continue;
            }
            if newly > 0 && !seg.broken {
                let (id, lo, hi) = (seg.id, seg.seqs[from], seg.seqs[to - 1]);
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
    }

    /// Plans the ACK frames noted since the last call. Losing them (a crash
    /// first) only means those events are sent again after the restart.
    pub fn flush_acks(&mut self) {
        let durable = self.opts.sync == SyncPolicy::Always;
        for (key, id, lo, hi) in std::mem::take(&mut self.pending_acks) {
            let mut buf = Vec::with_capacity(32);
            frame::encode_ack(&mut buf, lo, hi);
            self.write_to(&key, Some(id), buf, durable);
        }
    }

    /// Notes that a request holding the events `[lo, hi]` of `key` is about
    /// to be sent (`refused = false`), or was refused by the service, so
    /// nothing of it was accepted (`refused = true`). Used at the next start
    /// to count events that may arrive twice. Under [`SyncPolicy::Always`]
    /// the note is made durable before anything after it.
    pub fn mark(&mut self, key: &StreamKey, lo: u64, hi: u64, refused: bool) {
        let mut buf = Vec::with_capacity(32);
        frame::encode_range(&mut buf, refused, lo, hi);
        let durable = self.opts.sync == SyncPolicy::Always;
        self.write_to(key, None, buf, durable);
    }

    /// Plans a small frame at the end of segment `id` of `key` (`None`: the newest).
    fn write_to(&mut self, key: &StreamKey, id: Option<u64>, buf: Vec<u8>, durable: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let seg = match id {
            Some(id) => stream.segments.iter_mut().find(|s| s.id == id),
            None => stream.segments.back_mut(),
        };
        // Deleted meanwhile, or broken: nothing (more) to note there.
        let Some(seg) = seg.filter(|s| !s.broken) else {
            return;
        };
        let offset = seg.len;
        seg.len += buf.len() as u64;
        self.bytes += buf.len() as u64;
        self.ops.push(Op::Write {
            id: seg.id,
            offset,
            bytes: buf,
            events: None,
            durable,
        });
    }

    /// Plans deleting the segment files found at start, after everything
    /// planned before (their events appended again) is durable.
    pub fn retire_recovered(&mut self) {
        for (path, _) in std::mem::take(&mut self.recovered) {
            self.ops.push(Op::Retire { path });
        }
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
    (frame::HEADER_LEN + frame::key_len(&key.target.labels)) as u64
}

#[cfg(test)]
mod tests;
