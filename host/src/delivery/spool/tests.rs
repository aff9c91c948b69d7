//! Spool tests: round trips through a real directory, acknowledgement and
//! deletion, every kind of damage, the budget arithmetic, and a property test
//! that whatever sequence of appends and acks ran, reopening returns exactly
//! the unacknowledged events in order.

use super::io::{OsFs, Report, Writer};
use super::*;
use proptest::prelude::*;

fn key(stream: &str) -> StreamKey {
    StreamKey {
        target: Arc::new(Target::new(
            "cw",
            vec![
                ("log_group".into(), "/cwpub/test".into()),
                ("log_stream".into(), stream.into()),
            ],
        )),
        kind: PayloadKind::JsonLog,
    }
}

fn opts(dir: &Path) -> SpoolOptions {
    SpoolOptions {
        sink: "cw".into(),
        dir: dir.to_path_buf(),
        max_bytes: 64 << 20,
        sync: SyncPolicy::Batch,
    }
}

/// An open spool whose planned disk work is carried out at once, on the
/// test's thread, after every change (and when it is dropped).
struct Open {
    s: Spool,
    w: Writer,
}

impl Open {
    fn apply(&mut self) {
        let ops = self.s.take_ops();
        self.w.run(ops, &|r| {
            if !matches!(r, Report::Durable { .. }) {
                panic!("disk work failed: {r:?}");
            }
        });
    }
    fn append(&mut self, k: &StreamKey, events: &[EventRef<'_>]) {
        self.s.append(k, events);
        self.apply();
    }
    fn ack(&mut self, k: &StreamKey, lo: u64, hi: u64) {
        self.s.ack(k, lo, hi);
        self.apply();
    }
    fn mark(&mut self, k: &StreamKey, lo: u64, hi: u64, refused: bool) {
        self.s.mark(k, lo, hi, refused);
        self.apply();
    }
    fn flush_acks(&mut self) {
        self.apply();
    }
    fn retire_recovered(&mut self) {
        self.s.retire_recovered();
        self.apply();
    }
}

impl std::ops::Deref for Open {
    type Target = Spool;
    fn deref(&self) -> &Spool {
        &self.s
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.apply();
    }
}

fn msg(seq: u64) -> String {
    format!(
        "{{\"seq\":{seq},\"pad\":\"{}\"}}",
        "x".repeat((seq % 50) as usize)
    )
}

fn append(spool: &mut Open, k: &StreamKey, seqs: std::ops::Range<u64>) {
    let msgs: Vec<String> = seqs.clone().map(msg).collect();
    let events: Vec<EventRef<'_>> = seqs
        .zip(&msgs)
        .map(|(seq, m)| EventRef {
            seq,
            timestamp_ms: 1_700_000_000_000 + seq as i64,
            job: "job",
            message: m,
        })
        .collect();
    spool.append(k, &events);
}

fn reopen(dir: &Path) -> (Open, Recovered) {
    let (s, r) = Spool::open(opts(dir), &OsFs).expect("open");
    let w = Writer::new(dir.to_path_buf(), Arc::new(OsFs), SyncPolicy::Batch);
    (Open { s, w }, r)
}

fn seqs_of(r: &Recovered, k: &StreamKey) -> Vec<u64> {
    r.streams
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, evs)| evs.iter().map(|e| e.seq).collect())
        .unwrap_or_default()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| segment::parse_name(n).is_some())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn unacknowledged_events_come_back_in_order_with_their_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (key("a"), key("b"));
    {
        let (mut s, r) = reopen(dir.path());
        assert!(r.streams.is_empty());
        append(&mut s, &a, 0..5);
        append(&mut s, &b, 5..8);
        append(&mut s, &a, 8..10);
        s.ack(&a, 0, 2);
        assert_eq!(s.stats().events, 10 - 3);
    }
    let (s, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [3, 4, 8, 9]);
    assert_eq!(seqs_of(&r, &b), [5, 6, 7]);
    let e = &r.streams[0].1[0];
    assert_eq!(
        (e.timestamp_ms, &*e.job, e.message.as_str()),
        (1_700_000_000_003, "job", msg(3).as_str())
    );
    assert_eq!(r.report.corrupt_records, 0);
    assert_eq!(
        s.next_seq(),
        10,
        "sequence numbers continue after the largest seen"
    );
}

#[test]
fn a_fully_acknowledged_stream_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = reopen(dir.path());
    let a = key("a");
    append(&mut s, &a, 0..100);
    assert_eq!(segment_files(dir.path()).len(), 1);
    s.ack(&a, 0, 99);
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(s.stats(), SpoolStats::default());
}

#[test]
fn segments_roll_and_are_deleted_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = reopen(dir.path());
    let a = key("a");
    let big = "y".repeat(1 << 20);
    for seq in 0..10u64 {
        s.append(
            &a,
            &[EventRef {
                seq,
                timestamp_ms: 1,
                job: "j",
                message: &big,
            }],
        );
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    let before = s.bytes();
    s.ack(&a, 0, 4);
    let after = segment_files(dir.path());
    assert!(after.len() < files.len());
    assert_eq!(after.last(), files.last(), "the head stays");
    assert!(s.bytes() < before);
    let on_disk: u64 = after
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(s.bytes(), on_disk, "byte gauge matches the files");
    drop(s);
    let (_, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [5, 6, 7, 8, 9]);
}

#[test]
fn replay_then_retire_leaves_only_the_new_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = key("a");
    {
        let (mut s, _) = reopen(dir.path());
        append(&mut s, &a, 0..10);
        s.ack(&a, 0, 3);
        s.flush_acks();
    }
    let (mut s, r) = reopen(dir.path());
    let (k, evs) = &r.streams[0];
    let refs: Vec<EventRef<'_>> = evs
        .iter()
        .map(|e| EventRef {
            seq: e.seq,
            timestamp_ms: e.timestamp_ms,
            job: &e.job,
            message: &e.message,
        })
        .collect();
    s.append(k, &refs);
    s.retire_recovered();
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(s);
    let (_, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [4, 5, 6, 7, 8, 9]);
}

#[test]
fn crash_between_replay_and_retire_replays_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = key("a");
    {
        let (mut s, _) = reopen(dir.path());
        append(&mut s, &a, 0..6);
    }
    {
        let (mut s, r) = reopen(dir.path());
        let evs = &r.streams[0].1;
        let refs: Vec<EventRef<'_>> = evs
            .iter()
            .map(|e| EventRef {
                seq: e.seq,
                timestamp_ms: e.timestamp_ms,
                job: &e.job,
                message: &e.message,
            })
            .collect();
        s.append(&a, &refs);
        // Dropped without retire_recovered: old and new copies both exist.
    }
    let (_, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [0, 1, 2, 3, 4, 5]);
}

/// Byte offsets of every frame of a segment file, after the header.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = frame::HEADER_LEN;
    let mut v = Vec::new();
    while at < bytes.len() {
        v.push(at);
        at += frame::decode(&bytes[at..]).expect("intact").1;
    }
    v
}

#[test]
fn flipped_byte_truncated_tail_and_foreign_files_are_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (key("a"), key("b"));
    {
        let (mut s, _) = reopen(dir.path());
        append(&mut s, &a, 0..10);
        append(&mut s, &b, 10..20);
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    // Stream a: flip one byte inside event 3 (frame 0 is the KEY).
    let mut bytes = std::fs::read(&files[0]).expect("read");
    let starts = frame_starts(&bytes);
    bytes[starts[4] + 20] ^= 0x01;
    std::fs::write(&files[0], &bytes).expect("write");
    // Stream b: cut the file in the middle of its last event.
    let bytes = std::fs::read(&files[1]).expect("read");
    let starts = frame_starts(&bytes);
    let cut = starts[starts.len() - 1] + 5;
    std::fs::write(&files[1], &bytes[..cut]).expect("truncate");
    // A foreign file and a directory.
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("foreign");
    std::fs::create_dir(dir.path().join("sub")).expect("dir");

    let (s, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(seqs_of(&r, &b), (10..19).collect::<Vec<_>>());
    assert_eq!(r.report.corrupt_records, 2);
    assert!(r.report.corrupt_bytes > 5);
    assert_eq!(r.report.foreign, ["notes.txt", "sub"]);
    let st = s.stats();
    assert_eq!((st.corrupt_records, st.foreign_files), (2, 2));
    assert!(
        dir.path().join("notes.txt").exists(),
        "foreign files are left alone"
    );
}

#[test]
fn unreadable_segments_are_quarantined_and_counted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = key("a");
    {
        let (mut s, _) = reopen(dir.path());
        append(&mut s, &a, 0..3);
    }
    // A segment name over garbage, an empty segment, and a segment whose
    // KEY frame is damaged.
    std::fs::write(
        dir.path().join(segment::file_name(900)),
        b"garbage that is no segment",
    )
    .expect("garbage");
    std::fs::write(dir.path().join(segment::file_name(901)), b"").expect("empty");
    let good = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&good).expect("read");
    bytes[frame::HEADER_LEN + 9] ^= 0xff;
    std::fs::write(dir.path().join(segment::file_name(902)), &bytes).expect("bad key");

    let (s, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), [0, 1, 2]);
    assert_eq!(r.report.corrupt_records, 2, "{:?}", r.report);
    assert_eq!(r.report.quarantined.len(), 2);
    assert!(
        !dir.path().join(segment::file_name(901)).exists(),
        "an empty segment is removed silently"
    );
    assert!(
        dir.path()
            .join(format!("{}.corrupt", segment::file_name(900)))
            .exists()
    );
    drop(s);
    let (_, r) = reopen(dir.path());
    assert_eq!(
        r.report.corrupt_records, 0,
        "quarantined files are not counted again"
    );
}

#[test]
fn requests_without_an_answer_count_as_possible_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = key("a");
    {
        let (mut s, _) = reopen(dir.path());
        append(&mut s, &a, 0..10);
        s.mark(&a, 0, 3, false);
        s.mark(&a, 0, 3, true); // refused: nothing of it was accepted
        s.mark(&a, 0, 3, false); // sent again: answer lost in the crash
        s.mark(&a, 4, 5, false);
        s.ack(&a, 0, 3); // 0..=3 were accepted after all
        s.flush_acks();
    }
    let (s, r) = reopen(dir.path());
    assert_eq!(seqs_of(&r, &a), (4..10).collect::<Vec<_>>());
    assert_eq!(r.report.possible_duplicates, 2, "events 4 and 5");
    assert_eq!(s.stats().possible_duplicates, 2);
}

#[test]
fn append_cost_is_exact_for_a_fresh_stream_and_an_open_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = reopen(dir.path());
    let a = key("a");
    let m = msg(1);
    let cost = s.append_cost(&a, [("job", m.as_str())]);
    append(&mut s, &a, 1..2);
    assert_eq!(s.bytes(), cost);
    let cost2 = s.append_cost(&a, [("job", msg(2).as_str())]);
    append(&mut s, &a, 2..3);
    assert_eq!(s.bytes(), cost + cost2);
}

#[test]
fn second_open_of_a_locked_spool_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_s, _) = reopen(dir.path());
    let err = Spool::open(opts(dir.path()), &OsFs).unwrap_err();
    assert!(
        err.to_string().contains("cannot share one spool_dir"),
        "{err}"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8, u8),
    Ack(u8, u8),
    Mark(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 1u8..40).prop_map(|(k, n)| Op::Append(k, n)),
        2 => (0u8..3, 0u8..100).prop_map(|(k, n)| Op::Ack(k, n)),
        1 => (0u8..3).prop_map(Op::Mark),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever ran, reopening yields exactly the unacknowledged events of
    /// each stream, in order, and the gauges matched the model throughout.
    #[test]
    fn reopen_returns_exactly_the_unacknowledged_events(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = [key("a"), key("b"), key("c")];
        let mut model: Vec<Vec<u64>> = vec![Vec::new(); 3];
        let mut next = 0u64;
        {
            let (mut s, _) = reopen(dir.path());
            for op in ops {
                match op {
                    Op::Append(k, n) => {
                        let k = k as usize;
                        append(&mut s, &keys[k], next..next + n as u64);
                        model[k].extend(next..next + n as u64);
                        next += n as u64;
                    }
                    Op::Ack(k, pct) => {
                        let k = k as usize;
                        // Ack a run of the stream's live events, anywhere.
                        let len = model[k].len();
                        let cut = len * pct as usize / 100;
                        if cut > 0 {
                            let from = (pct as usize * 7) % (len - cut + 1);
                            let (lo, hi) = (model[k][from], model[k][from + cut - 1]);
                            s.ack(&keys[k], lo, hi);
                            model[k].drain(from..from + cut);
                        }
                        if pct % 3 == 0 {
                            s.flush_acks();
                        }
                    }
                    Op::Mark(k) => {
                        if let (Some(lo), Some(hi)) = (model[k as usize].first(), model[k as usize].last()) {
                            s.mark(&keys[k as usize], *lo, *hi, false);
                        }
                    }
                }
                let live: usize = model.iter().map(Vec::len).sum();
                prop_assert_eq!(s.stats().events, live as u64);
            }
            s.flush_acks();
        }
        let (_, r) = reopen(dir.path());
        for (i, k) in keys.iter().enumerate() {
            prop_assert_eq!(seqs_of(&r, k), model[i].clone());
        }
        prop_assert_eq!(r.report.corrupt_records, 0);
    }
}

/// A file layer that notes syncs, over the real one.
#[derive(Clone, Default)]
struct Syncs(Arc<std::sync::Mutex<Vec<String>>>);

struct SyncFile(Box<dyn io::SpoolFile>, Syncs);

impl io::SpoolFile for SyncFile {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.1.0.lock().expect("syncs").push("write".into());
        self.0.write_at(buf, offset)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.1.0.lock().expect("syncs").push("sync".into());
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

impl io::SpoolFs for Syncs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        OsFs.read(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn io::SpoolFile>> {
        Ok(Box::new(SyncFile(OsFs.create_new(path)?, self.clone())))
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        OsFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        OsFs.sync_dir(dir)
    }
}

/// Under `always`, an acknowledgement is a durable write, synced in the
/// same run of the spool's thread — not only after the next event append.
#[test]
fn under_always_acknowledgements_are_synced_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let always = SpoolOptions {
        sync: SyncPolicy::Always,
        ..opts(dir.path())
    };
    let syncs = Syncs::default();
    let (mut s, _) = Spool::open(always, &syncs).expect("open");
    let mut w = Writer::new(
        dir.path().to_path_buf(),
        Arc::new(syncs.clone()),
        SyncPolicy::Always,
    );
    let a = key("a");
    let msgs: Vec<String> = (0..4).map(msg).collect();
    let refs: Vec<EventRef<'_>> = (0..4)
        .map(|i| EventRef {
            seq: i,
            timestamp_ms: 1,
            job: "j",
            message: &msgs[i as usize],
        })
        .collect();
    s.append(&a, &refs);
    w.run(s.take_ops(), &|_| {});
    syncs.0.lock().expect("syncs").clear();
    s.ack(&a, 0, 1);
    let ops = s.take_ops();
    assert!(
        ops.iter().any(|op| matches!(
            op,
            io::Op::Write {
                events: None,
                durable: true,
                ..
            }
        )),
        "the ACK frame is a durable write: {ops:?}"
    );
    w.run(ops, &|_| {});
    assert_eq!(*syncs.0.lock().expect("syncs"), ["write", "sync"]);
    // Under `batch` it is written, not synced of its own.
    let batch = SpoolOptions {
        sync: SyncPolicy::Batch,
        ..opts(dir.path())
    };
    drop((s, w));
    let (mut s, r) = Spool::open(batch, &syncs).expect("reopen");
    assert_eq!(seqs_of(&r, &a), [2, 3]);
    let mut w = Writer::new(
        dir.path().to_path_buf(),
        Arc::new(syncs.clone()),
        SyncPolicy::Batch,
    );
    let refs: Vec<EventRef<'_>> = (10..14)
        .map(|i| EventRef {
            seq: i,
            timestamp_ms: 1,
            job: "j",
            message: "m",
        })
        .collect();
    s.append(&a, &refs);
    w.run(s.take_ops(), &|_| {});
    syncs.0.lock().expect("syncs").clear();
    s.ack(&a, 10, 11);
    w.run(s.take_ops(), &|_| {});
    assert_eq!(*syncs.0.lock().expect("syncs"), ["write"]);
}
