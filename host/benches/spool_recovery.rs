//! Spool recovery time against spool size: spools of 128 MiB to 1 GiB of
//! ~1 KiB events, with one acknowledgement per 10 events (100,000 for 1 GiB)
//! spread over every segment, are opened cold (page cache dropped when
//! permitted, else warm) and the time to read them back is reported with the
//! rate, so linear growth shows as a constant MB/s. Run with
//! `cargo bench -p cwpub --bench spool_recovery` (`CWPUB_BENCH_SPOOL_DIR`
//! picks the file system; default: the system temp dir). No timing
//! assertions: figures go to the docs by hand.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cwpub::delivery::SyncPolicy;
use cwpub::delivery::spool::io::{OsFs, Writer};
use cwpub::delivery::spool::{EventRef, Spool, SpoolOptions, StreamKey};
use cwpub::event::{PayloadKind, Target};

const EVENT_BYTES: usize = 1_000;
const ACK_EVERY: u64 = 10;
const STREAMS: u64 = 4;

fn opts(dir: &Path) -> SpoolOptions {
    SpoolOptions {
        sink: "bench".into(),
        dir: dir.to_path_buf(),
        max_bytes: 2 << 30,
        sync: SyncPolicy::Never,
    }
}

/// Writes `bytes` of events over `STREAMS` streams, acknowledging half of
/// every run of `ACK_EVERY`; returns (events, acknowledgements).
fn build(dir: &Path, bytes: u64) -> (u64, u64) {
    let (mut spool, _) = Spool::open(opts(dir), &OsFs).expect("open");
    let mut writer = Writer::new(dir.to_path_buf(), Arc::new(OsFs), SyncPolicy::Never);
    let keys: Vec<StreamKey> = (0..STREAMS)
        .map(|i| StreamKey {
            target: Arc::new(Target::new(
                "bench",
                vec![("stream".into(), format!("s{i}"))],
            )),
            kind: PayloadKind::JsonLog,
        })
        .collect();
    let message = "x".repeat(EVENT_BYTES);
    let events = bytes / EVENT_BYTES as u64;
    let (mut seq, mut acks) = (0u64, 0u64);
    while seq < events {
        let key = &keys[(seq / 100 % STREAMS) as usize];
        let refs: Vec<EventRef<'_>> = (seq..seq + 100)
            .map(|s| EventRef {
                seq: s,
                timestamp_ms: 1_700_000_000_000,
                job: "bench",
                message: &message,
            })
            .collect();
        spool.append(key, &refs);
        // Half of each run of ten is delivered: one acknowledgement per ten events.
        for first in (seq..seq + 100).step_by(ACK_EVERY as usize) {
            spool.ack(key, first, first + ACK_EVERY / 2 - 1);
            acks += 1;
        }
        seq += 100;
        writer.run(spool.take_ops(), &|_| {});
    }
    writer.run(spool.take_ops(), &|_| {});
    (seq, acks)
}

/// Asks the kernel to drop clean cached pages (needs root; else the read is warm).
fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

fn main() {
    let root = std::env::var_os("CWPUB_BENCH_SPOOL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("| spool | events | acknowledgements | live events | recovery (cold) | MB/s |");
    println!("|---|---|---|---|---|---|");
    for mib in [128u64, 256, 512, 1024] {
        let dir = tempfile::tempdir_in(&root).expect("dir");
        let (events, acks) = build(dir.path(), mib << 20);
        // Write everything back first, so dropping the cache makes the read cold.
        let _ = std::process::Command::new("sync").status();
        let cold = drop_caches();
        let t0 = Instant::now();
        let (_spool, recovered) = Spool::open(opts(dir.path()), &OsFs).expect("reopen");
        let took = t0.elapsed();
        let live: u64 = recovered.streams.iter().map(|(_, e)| e.len() as u64).sum();
        println!(
            "| {mib} MiB | {events} | {acks} | {live} | {:.2} s{} | {:.0} |",
            took.as_secs_f64(),
            if cold { "" } else { " (warm)" },
            (mib << 20) as f64 / 1e6 / took.as_secs_f64()
        );
    }
}
