//! Opening a spool: lock the directory, read back every segment, skip and
//! count damage, and hand back the unacknowledged events per stream, in
//! order. Nothing here panics or fails on bad content or on a file it cannot
//! read: a torn tail, a flipped byte, a truncated or empty file, a file that
//! is not a segment at all, a segment the process may not read — each is
//! logged, counted and skipped. Only a directory that cannot be created,
//! listed or locked stops the start.
//!
//! * A segment whose header or KEY frame cannot be read is renamed to
//!   `<name>.corrupt` (kept for inspection, never read again) and its bytes
//!   count as corrupt.
//! * A segment that cannot be read at all (permissions, an I/O error) is
//!   left in place, counted and logged at every start.
//! * Inside a readable segment, each damaged region counts as one corrupt
//!   record (it lost at least one); reading resumes at the next intact frame.
//! * Any other file is foreign: counted and logged at every start, never
//!   touched.
//!
//! Working out what is live is linear in the spool's size: per stream the
//! acknowledged ranges are sorted and merged once, then swept together with
//! the events in sequence order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::frame::Frame;
use super::io::SpoolFs;
use super::lock::{DirLock, LOCK_FILE};
use super::segment::{self, QUARANTINE_SUFFIX};
use super::{Spool, SpoolOptions, SpoolStats, StreamKey};
use crate::event::Target;

/// An event read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredEvent {
    /// Its sequence number (kept when it is spooled again).
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The job that produced it.
    pub job: Arc<str>,
    /// The message.
    pub message: String,
}

/// What opening the spool found, for the start-up log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: u64,
    /// Unacknowledged events found (to be replayed).
    pub events: u64,
    /// Damaged regions skipped (each lost at least one record).
    pub corrupt_records: u64,
    /// Bytes in those regions and in quarantined segments.
    pub corrupt_bytes: u64,
    /// Segments quarantined now (renamed to `*.corrupt`).
    pub quarantined: Vec<String>,
    /// Names of files that are not the spool's.
    pub foreign: Vec<String>,
    /// Segments that could not be read (skipped).
    pub unreadable: Vec<String>,
    /// Events that were in a request whose answer was lost.
    pub possible_duplicates: u64,
}

/// The events to replay, per stream in sequence order, and the report.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Streams with unacknowledged events, sorted by key.
    pub streams: Vec<(StreamKey, Vec<RecoveredEvent>)>,
    /// What was found.
    pub report: RecoveryReport,
}

#[derive(Default)]
struct StreamFound {
    events: BTreeMap<u64, RecoveredEvent>,
    acked: Vec<(u64, u64)>,
    sending: Vec<(u64, u64)>,
    refused: Vec<(u64, u64)>,
}

pub(super) fn open(opts: SpoolOptions, fs: &dyn SpoolFs) -> std::io::Result<(Spool, Recovered)> {
    let dir = opts.dir.clone();
    create_dir(&dir)?;
    let lock = DirLock::acquire(&dir)?;
    let mut report = RecoveryReport::default();
    let mut segments: Vec<(u64, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == LOCK_FILE {
            continue;
        }
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        match segment::parse_name(&name) {
            Some(id) if is_file => segments.push((id, name)),
            _ if name.ends_with(QUARANTINE_SUFFIX) => {
                tracing::warn!(file = %dir.join(&name).display(), "spool: a segment quarantined at an earlier start is still here; delete it once inspected");
            }
            _ => report.foreign.push(name),
        }
    }
    segments.sort_unstable();
    report.foreign.sort();
    for name in &report.foreign {
        tracing::warn!(file = %dir.join(name).display(), "spool: this file is not a spool segment; it is left alone (keep spool_dir for cwpub only)");
    }

    let mut streams: HashMap<StreamKey, StreamFound> = HashMap::new();
    let mut kept: Vec<(std::path::PathBuf, u64)> = Vec::new();
    let mut max_seq: Option<u64> = None;
    let mut max_id: Option<u64> = None;
    for (id, name) in &segments {
        max_id = max_id.max(Some(*id));
        let path = dir.join(name);
        let bytes = match fs.read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(segment = %path.display(), error = %e, "spool: cannot read this segment; it is skipped and left in place (its events are not replayed while it stays unreadable)");
                report.unreadable.push(name.clone());
                continue;
            }
        };
        if bytes.is_empty() {
            // Created, never written: a crash right after creation. Nothing lost.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let scan = segment::scan(&bytes);
        let mut frames = scan.frames.into_iter();
        let key = match (scan.header_ok, frames.next()) {
            (true, Some(Frame::Key { kind, labels }))
                if scan
                    .damage
                    .first()
                    .is_none_or(|d| d.offset > segment_key_end()) =>
            {
                StreamKey {
                    target: Arc::new(Target::new(opts.sink.clone(), labels)),
                    kind,
                }
            }
            _ => {
                quarantine(&dir, name, bytes.len() as u64, &mut report);
                continue;
            }
        };
        report.segments += 1;
        for d in &scan.damage {
            report.corrupt_records += 1;
            report.corrupt_bytes += d.len;
            tracing::warn!(
                segment = %path.display(),
                offset = d.offset,
                bytes = d.len,
                problem = ?d.why,
                at_end = d.at_end,
                "spool: damaged record skipped (at least one event lost)"
            );
        }
        let found = streams.entry(key).or_default();
        for f in frames {
            match f {
                Frame::Event {
                    seq,
                    timestamp_ms,
                    job,
                    message,
                } => {
                    max_seq = max_seq.max(Some(seq));
                    found.events.entry(seq).or_insert(RecoveredEvent {
                        seq,
                        timestamp_ms,
                        job: Arc::from(job),
                        message,
                    });
                }
                Frame::Ack { lo, hi } => found.acked.push((lo, hi)),
                Frame::Sending { lo, hi } => found.sending.push((lo, hi)),
                Frame::Refused { lo, hi } => found.refused.push((lo, hi)),
                Frame::Key { .. } => {
                    // A second KEY frame cannot be written; count it as damage.
                    report.corrupt_records += 1;
                }
            }
        }
        kept.push((path, bytes.len() as u64));
    }

    let mut out: Vec<(StreamKey, Vec<RecoveredEvent>)> = Vec::new();
    for (key, found) in streams {
        let refused: HashSet<(u64, u64)> = found.refused.into_iter().collect();
        let open = merge(
            found
                .sending
                .into_iter()
                .filter(|r| !refused.contains(r))
                .collect(),
        );
        let acked = merge(found.acked);
        // Both sweeps walk their ranges once, as the events come in order.
        let (mut acked_sweep, mut open_sweep) = (Sweep::new(&acked), Sweep::new(&open));
        let live: Vec<RecoveredEvent> = found
            .events
            .into_values()
            .filter(|e| !acked_sweep.covers(e.seq))
            .collect();
        report.possible_duplicates +=
            live.iter().filter(|e| open_sweep.covers(e.seq)).count() as u64;
        report.events += live.len() as u64;
        if !live.is_empty() {
            out.push((key, live));
        }
    }
    out.sort_by(|a, b| (&a.0.target, a.0.kind.as_str()).cmp(&(&b.0.target, b.0.kind.as_str())));

    let stats = SpoolStats {
        corrupt_records: report.corrupt_records,
        corrupt_bytes: report.corrupt_bytes,
        foreign_files: report.foreign.len() as u64,
        unreadable_segments: report.unreadable.len() as u64,
        possible_duplicates: report.possible_duplicates,
        ..SpoolStats::default()
    };
    let segment_bytes = super::segment_bytes(opts.max_bytes);
    let spool = Spool {
        dir,
        _lock: lock,
        opts,
        streams: HashMap::new(),
        next_id: max_id.map_or(0, |m| m + 1),
        bytes: 0,
        events: 0,
        recovered: kept,
        appended_below: max_seq.map_or(0, |m| m + 1),
        pending_acks: Vec::new(),
        segment_bytes,
        stats,
        ops: Vec::new(),
    };
    Ok((
        spool,
        Recovered {
            streams: out,
            report,
        },
    ))
}

/// Sorts inclusive ranges and merges the overlapping and adjacent ones.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(lo, hi)| lo <= hi);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some((_, last)) if lo <= last.saturating_add(1) => *last = (*last).max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Asks whether ascending sequence numbers fall in sorted, disjoint ranges,
/// walking the ranges once.
struct Sweep<'a> {
    ranges: &'a [(u64, u64)],
}

impl<'a> Sweep<'a> {
    fn new(ranges: &'a [(u64, u64)]) -> Self {
        Sweep { ranges }
    }

    /// Whether `seq` (not below any earlier one asked) is in a range.
    fn covers(&mut self, seq: u64) -> bool {
        while let Some(&(_, hi)) = self.ranges.first() {
            if hi < seq {
                self.ranges = &self.ranges[1..];
            } else {
                break;
            }
        }
        self.ranges.first().is_some_and(|&(lo, _)| lo <= seq)
    }
}

/// Where the KEY frame of a segment can end at the latest: damage before
/// the first intact frame means the KEY frame itself was lost.
fn segment_key_end() -> u64 {
    super::frame::HEADER_LEN as u64
}

fn quarantine(dir: &Path, name: &str, len: u64, report: &mut RecoveryReport) {
    let from = dir.join(name);
    let to = dir.join(format!("{name}{QUARANTINE_SUFFIX}"));
    report.corrupt_records += 1;
    report.corrupt_bytes += len;
    match std::fs::rename(&from, &to) {
        Ok(()) => tracing::warn!(
            segment = %from.display(),
            moved_to = %to.display(),
            bytes = len,
            "spool: segment unreadable (bad header or stream name): its events are lost; kept for inspection"
        ),
        Err(e) => tracing::warn!(
            segment = %from.display(),
            error = %e,
            "spool: segment unreadable and could not be renamed; it is skipped"
        ),
    }
    report.quarantined.push(name.to_string());
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot create spool_dir {}: {e}", dir.display()),
        )
    })
}
