//! Delivery throughput benchmark: batching, request building, encoding and
//! SigV4 signing, and HTTP against a loopback endpoint that accepts
//! everything, with the durable spool off and on (each sync policy), side by
//! side in one run. Reports medians of several runs: events/s and MB/s of
//! message payload, per wall-clock second and per CPU-second of the delivery
//! side (process CPU minus the endpoint thread's CPU); then the idle cost of
//! a core with a spool (CPU time and wake-ups of the spool's thread over 5 s
//! with nothing to do). CPU is read from the kernel's per-thread scheduler
//! statistics (nanoseconds). Run with `cargo bench -p cwpub --bench delivery`
//! (`CWPUB_BENCH_SPOOL_DIR` picks the spool's file system; default: the
//! system temp dir). No timing assertions: figures go to the docs by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use cwpub::delivery::{Delivery, DeliveryConfig, SyncPolicy};
use cwpub::event::{LogEvent, PayloadKind, Submission, Target};
use cwpub::ledger::Ledger;

use cwpub::sinks::cloudwatch::{self, CloudWatchConfig};
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper_util::rt::TokioIo;

const RUNS: usize = 5;
const TARGETS: usize = 8;

/// Seconds on CPU of one thread, from its scheduler statistics (ns).
fn thread_cpu(schedstat: &std::path::Path) -> f64 {
    std::fs::read_to_string(schedstat)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// Seconds on CPU of the calling thread.
fn this_thread_cpu() -> f64 {
    thread_cpu(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// Seconds on CPU of this process, threads that ended included.
fn process_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

async fn start(cfg: DeliveryConfig, sdk: &SdkConfig) -> Delivery {
    let ledger = Ledger::new(cfg.drop_log_interval);
    cloudwatch::start("bench", cfg, CloudWatchConfig::default(), sdk, ledger)
        .await
        .expect("start delivery")
}

struct Endpoint {
    port: u16,
    server_cpu: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

/// An HTTP endpoint on its own thread that reads each body and answers `{}`.
fn start_endpoint() -> Endpoint {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let server_cpu = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (cpu, reqs) = (server_cpu.clone(), requests.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let cpu2 = cpu.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let secs = this_thread_cpu();
                    cpu2.store((secs * 1e6) as u64, Ordering::Relaxed);
                }
            });
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let reqs = reqs.clone();
                            async move {
                                let _ = req.into_body().collect().await;
                                reqs.fetch_add(1, Ordering::Relaxed);
                                Ok::<_, std::convert::Infallible>(
                                    Response::builder()
                                        .header("content-type", "application/x-amz-json-1.1")
                                        .body(Full::new(Bytes::from_static(b"{}")))
                                        .expect("response"),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    Endpoint {
        port,
        server_cpu,
        requests,
    }
}

struct Run {
    wall: f64,
    cpu: f64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn make_submissions(events: usize, msg_len: usize, per_sub: usize) -> Vec<Submission> {
    let targets: Vec<Arc<Target>> = (0..TARGETS)
        .map(|i| {
            Arc::new(cloudwatch::target(
                "bench",
                "/cwpub/bench",
                &format!("stream-{i}"),
            ))
        })
        .collect();
    let job: Arc<str> = Arc::from("bench");
    let base = now_ms() - 60_000;
    let filler = "x".repeat(msg_len);
    let mut out = Vec::new();
    let mut n = 0;
    let mut k = 0;
    while n < events {
        let m = per_sub.min(events - n);
        let evs = (0..m)
            .map(|i| {
                let mut s = format!("{{\"seq\":{},\"pad\":\"", n + i);
                s.push_str(&filler[..msg_len.saturating_sub(s.len() + 2)]);
                s.push_str("\"}");
                LogEvent {
                    timestamp_ms: base + ((n + i) % 50_000) as i64,
                    message: s,
                }
            })
            .collect();
        out.push(Submission {
            job: job.clone(),
            kind: PayloadKind::JsonLog,
            target: targets[k % TARGETS].clone(),
            events: evs,
        });
        n += m;
        k += 1;
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let endpoint = start_endpoint();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDBENCH",
            "secret",
            None,
            None,
            "static",
        )))
        .endpoint_url(format!("http://127.0.0.1:{}", endpoint.port))
        .build();
    let spool_root = std::env::var_os("CWPUB_BENCH_SPOOL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let small = ("small events (100 B)", 1_000_000usize, 100usize, 1_000usize);
    let large = ("large events (8 KiB)", 40_000, 8_192, 100);
    let scenarios = [
        (small, None),
        (small, Some(SyncPolicy::Batch)),
        (small, Some(SyncPolicy::Always)),
        (small, Some(SyncPolicy::Never)),
        (large, None),
        (large, Some(SyncPolicy::Batch)),
    ];
    println!(
        "| scenario | events/run | events/s (wall) | MB/s (wall) | events/s per delivery core | MB/s per delivery core | delivery CPU-s/run | endpoint CPU-s/run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, events, msg_len, per_sub), spool) in scenarios {
        let name = match spool {
            None => format!("{name}, spool off"),
            Some(p) => format!("{name}, spool on (sync {})", p.as_str()),
        };
        let mut runs = Vec::new();
        let mut server_cpu = Vec::new();
        let mut payload = 0u64;
        for _ in 0..RUNS {
            let subs = make_submissions(events, msg_len, per_sub);
            payload = subs
                .iter()
                .flat_map(|s| s.events.iter())
                .map(|e| e.message.len() as u64)
                .sum();
            let dir = tempfile::tempdir_in(&spool_root).expect("spool dir");
            let cfg = DeliveryConfig {
                max_batch_delay: Duration::from_millis(200),
                buffer_budget_bytes: 4 << 30,
                put_rate_per_sec: 100_000,
                max_in_flight: 16,
                spool_dir: spool.map(|_| dir.path().join("spool")),
                spool_sync: spool.unwrap_or_default(),
                spool_max_bytes: 4 << 30,
                ..DeliveryConfig::default()
            };
            let (run, scpu) = rt.block_on(async {
                let d = start(cfg, &sdk).await;
                // Let the endpoint's CPU sampler settle.
                tokio::time::sleep(Duration::from_millis(250)).await;
                let s0 = endpoint.server_cpu.load(Ordering::Relaxed) as f64 / 1e6;
                let c0 = process_cpu();
                let t0 = Instant::now();
                for s in subs {
                    d.submit(s);
                }
                let report = d.drain(Duration::from_secs(600)).await;
                let wall = t0.elapsed().as_secs_f64();
                let c1 = process_cpu();
                tokio::time::sleep(Duration::from_millis(250)).await;
                let s1 = endpoint.server_cpu.load(Ordering::Relaxed) as f64 / 1e6;
                let st = d.stats();
                assert!(report.completed, "bench drain incomplete: {report:?}");
                assert_eq!(
                    st.totals.events_sent, events as u64,
                    "{:?}",
                    st.totals.drops
                );
                let scpu = (s1 - s0).max(0.0);
                (
                    Run {
                        wall,
                        cpu: (c1 - c0 - scpu).max(0.01),
                    },
                    scpu,
                )
            });
            runs.push(run);
            server_cpu.push(scpu);
        }
        let mb = payload as f64 / 1e6;
        let ev = events as f64;
        println!(
            "| {name} | {events} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} | {:.2} |",
            median(runs.iter().map(|r| ev / r.wall).collect()),
            median(runs.iter().map(|r| mb / r.wall).collect()),
            median(runs.iter().map(|r| ev / r.cpu).collect()),
            median(runs.iter().map(|r| mb / r.cpu).collect()),
            median(runs.iter().map(|r| r.cpu).collect()),
            median(server_cpu),
        );
    }
    eprintln!(
        "requests served: {}",
        endpoint.requests.load(Ordering::Relaxed)
    );
    idle_cost(&rt, &sdk, &spool_root);
}

/// Voluntary context switches of this process's thread named `name`
/// (Linux keeps 15 bytes of a thread name).
fn thread_switches(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if status
            .lines()
            .next()
            .is_some_and(|l| l.trim_end().ends_with(name))
        {
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

/// A core with a spool that has delivered one batch, then sits idle for 5 s.
fn idle_cost(rt: &tokio::runtime::Runtime, sdk: &SdkConfig, root: &std::path::Path) {
    let dir = tempfile::tempdir_in(root).expect("spool dir");
    let cfg = DeliveryConfig {
        max_batch_delay: Duration::from_millis(20),
        spool_dir: Some(dir.path().join("spool")),
        ..DeliveryConfig::default()
    };
    rt.block_on(async {
        let d = start(cfg, sdk).await;
        for s in make_submissions(100, 100, 100) {
            d.submit(s);
        }
        while d.stats().totals.events_sent < 100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (c0, w0) = (process_cpu(), thread_switches("cwpub-spool"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (c1, w1) = (process_cpu(), thread_switches("cwpub-spool"));
        println!();
        println!(
            "idle 5 s with a spool (after delivering 100 events): process CPU {:.2} s (includes the endpoint's 10 Hz CPU sampler), spool-thread wake-ups {}",
            c1 - c0,
            match (w0, w1) {
                (Some(a), Some(b)) => (b - a).to_string(),
                _ => "n/a (thread not found)".to_string(),
            }
        );
        let report = d.drain(Duration::from_secs(5)).await;
        assert!(report.completed);
    });
}
