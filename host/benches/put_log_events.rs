//! Benchmark: the CPU one CloudWatch Logs PutLogEvents call costs the host,
//! for each way of making it, side by side against one moto server:
//!
//! * `sdk fluent` — `client.put_log_events()…send()` (what delivery uses);
//! * `sdk input` — the SDK's operation input, `PutLogEventsInput::builder()…send_with(&client)`;
//! * `lean` — [`cwpub::sinks::cloudwatch::put_log_events::Client`]: SigV4 over the SDK's HTTP client.
//!
//! All three are built from one aws-config `SdkConfig` (static credentials
//! from the environment, as the SDK's default chain finds them) and send one
//! heartbeat-sized event per call, in turns. CPU is the whole process's
//! (`CLOCK_PROCESS_CPUTIME_ID`: every thread, the runtime's included) from
//! before the call to its end.
//!
//! * warm: calls back to back, after a warm-up;
//! * cold: one call after the process has been idle for `--gap` seconds
//!   (default 60), each client in turn, `--rounds` times (default 2).
//!
//! ```sh
//! cargo bench -p cwpub --bench put_log_events -- [--warm N] [--rounds N] [--gap SECONDS]
//! ```
//!
//! Needs moto (`.venv/bin/moto_server`, as scripts/test.sh installs it, or
//! `CWPUB_MOTO_SERVER`). moto closes the connection after every answer, so
//! every call, warm or cold, opens a TCP connection (no TLS on loopback).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsInput;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use cwpub::sinks::cloudwatch::put_log_events::{Client as LeanClient, InputEvent};

const GROUP: &str = "/cwpub/bench";
const STREAM: &str = "put-log-events";
const MESSAGE: &str = r#"{"service":"bench","event":"heartbeat","status":"ok","timestamp":"2026-12-06T15:00:00.000Z","event_id":"heartbeat:0f8e5c8a-3c2b-4a57-9d0e-6a4c7d0e2f11","sequence":42,"job":"heartbeat","scheduled_at":"2026-12-06T15:00:00.000Z","metadata":{"hostname":"ip-10-0-0-1","task_id":null,"region":"us-east-1","host_version":"0.1.0","uptime_seconds":1234.5}}"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    SdkFluent,
    SdkInput,
    Lean,
}

impl Way {
    const ALL: [Way; 3] = [Way::SdkFluent, Way::SdkInput, Way::Lean];

    fn name(self) -> &'static str {
        match self {
            Way::SdkFluent => "sdk fluent (put_log_events().send())",
            Way::SdkInput => "sdk input (PutLogEventsInput::send_with)",
            Way::Lean => "lean (SigV4 over the SDK's HTTP client)",
        }
    }
}

struct Clients {
    sdk: aws_sdk_cloudwatchlogs::Client,
    lean: LeanClient,
}

impl Clients {
    async fn put(&self, way: Way) {
        let now = chrono::Utc::now().timestamp_millis();
        match way {
            Way::SdkFluent => {
                let event = InputLogEvent::builder()
                    .timestamp(now)
                    .message(MESSAGE)
                    .build()
                    .expect("event");
                self.sdk
                    .put_log_events()
                    .log_group_name(GROUP)
                    .log_stream_name(STREAM)
                    .log_events(event)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| {
                        aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
                    })
            }
            Way::SdkInput => {
                let event = InputLogEvent::builder()
                    .timestamp(now)
                    .message(MESSAGE)
                    .build()
                    .expect("event");
                PutLogEventsInput::builder()
                    .log_group_name(GROUP)
                    .log_stream_name(STREAM)
                    .log_events(event)
                    .send_with(&self.sdk)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
                    })
            }
            Way::Lean => self
                .lean
                .put_log_events(
                    GROUP,
                    STREAM,
                    &[InputEvent {
                        timestamp_ms: now,
                        message: MESSAGE,
                    }],
                    false,
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
        .unwrap_or_else(|e| panic!("{}: PutLogEvents failed: {e}", way.name()));
    }
}

/// CPU time of the whole process (all threads) so far.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// (CPU, wall) of one call.
async fn measure(clients: &Clients, way: Way) -> (Duration, Duration) {
    let (cpu, wall) = (process_cpu(), Instant::now());
    clients.put(way).await;
    (process_cpu() - cpu, wall.elapsed())
}

struct Options {
    warm: usize,
    rounds: usize,
    gap: Duration,
}

fn options() -> Options {
    let mut o = Options {
        warm: 300,
        rounds: 2,
        gap: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match arg.as_str() {
            "--warm" => o.warm = value("--warm") as usize,
            "--rounds" => o.rounds = value("--rounds") as usize,
            "--gap" => o.gap = Duration::from_secs(value("--gap")),
            _ => {} // `cargo bench` adds `--bench`
        }
    }
    o
}

fn main() {
    let o = options();
    let moto = Moto::start();
    // SAFETY: set before the runtime (or any other thread) exists.
    unsafe {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let timeout = Duration::from_secs(10);
        let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(timeout)
                    .build(),
            )
            .endpoint_url(&moto.endpoint)
            .load()
            .await;
        let clients = Clients {
            sdk: aws_sdk_cloudwatchlogs::Client::new(&sdk_config),
            lean: LeanClient::new(&sdk_config, timeout).await.expect("lean client"),
        };
        clients
            .sdk
            .create_log_group()
            .log_group_name(GROUP)
            .send()
            .await
            .expect("create group");
        clients
            .sdk
            .create_log_stream()
            .log_group_name(GROUP)
            .log_stream_name(STREAM)
            .send()
            .await
            .expect("create stream");

        println!(
            "PutLogEvents against moto at {} (a new TCP connection per call), one {}-byte event per call",
            moto.endpoint,
            MESSAGE.len()
        );
        // Warm: interleaved, after a warm-up of each.
        for way in Way::ALL {
            for _ in 0..20 {
                clients.put(way).await;
            }
        }
        let mut warm: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); Way::ALL.len()];
        for _ in 0..o.warm {
            for (i, way) in Way::ALL.into_iter().enumerate() {
                warm[i].push(measure(&clients, way).await);
            }
        }
        println!("\nwarm, {} calls each (interleaved): CPU per call median [p10–p90], wall median", o.warm);
        for (way, samples) in Way::ALL.into_iter().zip(&mut warm) {
            println!("  {:<44} {}", way.name(), summary(samples));
        }

        if o.rounds == 0 {
            return;
        }
        println!(
            "\ncold: one call after {} s idle, each client in turn, {} rounds",
            o.gap.as_secs(),
            o.rounds
        );
        let mut cold: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); Way::ALL.len()];
        for round in 0..o.rounds {
            for (i, way) in Way::ALL.into_iter().enumerate() {
                tokio::time::sleep(o.gap).await;
                let sample = measure(&clients, way).await;
                println!(
                    "  round {} {:<44} CPU {:>7.3} ms, wall {:>7.3} ms",
                    round + 1,
                    way.name(),
                    ms(sample.0),
                    ms(sample.1)
                );
                cold[i].push(sample);
            }
        }
        println!("cold, per client: CPU per call median [min–max]");
        for (way, samples) in Way::ALL.into_iter().zip(&mut cold) {
            samples.sort();
            let cpu: Vec<f64> = samples.iter().map(|s| ms(s.0)).collect();
            println!(
                "  {:<44} {:.3} ms [{:.3}–{:.3}]",
                way.name(),
                cpu[cpu.len() / 2],
                cpu[0],
                cpu[cpu.len() - 1]
            );
        }
    });
}

fn summary(samples: &mut [(Duration, Duration)]) -> String {
    let mut cpu: Vec<f64> = samples.iter().map(|s| ms(s.0)).collect();
    let mut wall: Vec<f64> = samples.iter().map(|s| ms(s.1)).collect();
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "CPU {:.3} ms [{:.3}–{:.3}], wall {:.3} ms",
        at(&cpu, 0.5),
        at(&cpu, 0.1),
        at(&cpu, 0.9),
        at(&wall, 0.5)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// moto_server on 127.0.0.1, port 0, the port read back from its banner; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let bin = std::env::var_os("CWPUB_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run scripts/test.sh once (it installs moto into .venv) \
                     or set CWPUB_MOTO_SERVER",
                    bin.display()
                )
            });
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("http://127.0.0.1:") {
                        break line[at..].trim().to_owned();
                    }
                }
                _ => panic!("moto_server exited before it listened"),
            }
        };
        // Keep draining moto's request log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
