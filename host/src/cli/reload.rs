//! `cwpub reload [config]`: asks a running `cwpub run` to reload its
//! configuration and says how it went. The config file is checked first (a
//! file with problems is reported and the daemon is left alone); the daemon
//! is found by `--pid` or among the running processes by the config file it
//! was started with; it gets SIGHUP; and when its observe endpoint answers,
//! the command waits for the reload's result on `/readyz` and exits 0 when
//! it applied, 1 when the daemon refused it (the old configuration stays in
//! force) — so `systemctl reload` and scripts see a failed reload fail.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use cwpub::config;

use super::health;

/// Arguments of `cwpub reload`.
#[derive(Args)]
pub struct ReloadArgs {
    /// The config file the daemon was started with. Without it, the config
    /// file of the daemon found (by --pid, or the only `cwpub run` running).
    config: Option<PathBuf>,
    /// The daemon's process id (systemd's $MAINPID). Without it, the `cwpub
    /// run` process started with CONFIG is found (or the only one running).
    #[arg(long)]
    pid: Option<u32>,
    /// The observe address to read the result from (HOST:PORT); by default
    /// the config's `[observe] listen`.
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// How long to wait for the result (new guests compile first), e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// A `cwpub run` process and the config file it was started with.
struct Daemon {
    pid: u32,
    config: Option<PathBuf>,
}

/// Runs the command.
pub async fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let wanted = args.config.clone();
    let daemon = tokio::task::spawn_blocking(move || find(args.pid, wanted.as_deref()))
        .await
        .context("finding the daemon")??;
    let Some(path) = args.config.clone().or_else(|| daemon.config.clone()) else {
        bail!(
            "cannot tell which config file cwpub (pid {}) runs; pass it: cwpub reload --pid {} <config>",
            daemon.pid,
            daemon.pid
        );
    };
    let env = config::process_env();
    let loaded = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || config::load(&path, &env))
            .await
            .context("reading the config")?
    };
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            let code = super::check::report(&e);
            eprintln!(
                "cwpub (pid {}) was not asked to reload; it keeps its configuration",
                daemon.pid
            );
            return Ok(code);
        }
    };
    let addr = match &args.addr {
        Some(text) => Some(health::lookup(text, Duration::from_secs(5)).await?),
        None => config.observe.enabled.then(|| {
            let listen = config.observe.listen;
            // Port 0 (any free port): the port the daemon got.
            let listen = match listen.port() {
                0 => listeners(daemon.pid, listen)
                    .first()
                    .copied()
                    .unwrap_or(listen),
                _ => listen,
            };
            health::probe_addr(listen)
        }),
    };
    // The number of the last reload before ours, when the daemon says it.
    let before = match addr {
        Some(addr) => last_reload(addr).await.ok(),
        None => None,
    };
    hangup(daemon.pid)?;
    let (Some(addr), Some(before)) = (addr, before) else {
        println!(
            "asked cwpub (pid {}) to reload {}; its log has the result ({})",
            daemon.pid,
            path.display(),
            match addr {
                None => "its observe endpoint is disabled".to_string(),
                Some(addr) => format!("its observe endpoint does not answer on {addr}"),
            }
        );
        return Ok(ExitCode::SUCCESS);
    };
    let deadline = Instant::now() + args.timeout;
    loop {
        if let Ok(now) = last_reload(addr).await
            && now.number > before.number
        {
            return Ok(report(daemon.pid, &now));
        }
        if Instant::now() >= deadline {
            eprintln!(
                "cwpub (pid {}) did not report a reload within {}; see its log",
                daemon.pid,
                humantime::format_duration(args.timeout)
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `/readyz` says about the last reload.
struct LastReload {
    /// Reloads so far (0: none).
    number: u64,
    ok: bool,
    /// The lines, as shown.
    lines: Vec<String>,
}

/// Reads the last reload from the daemon's `/readyz` (whatever its status).
async fn last_reload(addr: SocketAddr) -> anyhow::Result<LastReload> {
    let (_, body) = tokio::time::timeout(Duration::from_secs(5), health::get(addr, "/readyz"))
        .await
        .map_err(|_| anyhow!("no answer"))??;
    Ok(parse_last_reload(&String::from_utf8_lossy(&body)))
}

/// The last reload in a `/readyz` body: `last reload #N at …: ok (…)` or
/// `…: failed, …:` followed by `  - problem` lines.
fn parse_last_reload(body: &str) -> LastReload {
    let mut lines = body.lines().skip_while(|l| !l.starts_with("last reload #"));
    let Some(first) = lines.next() else {
        return LastReload {
            number: 0,
            ok: true,
            lines: Vec::new(),
        };
    };
    let number = first
        .trim_start_matches("last reload #")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let ok = first.contains(": ok (");
    let mut out = vec![first.to_string()];
    out.extend(
        lines
            .take_while(|l| l.starts_with("  - "))
            .map(str::to_string),
    );
    LastReload {
        number,
        ok,
        lines: out,
    }
}

fn report(pid: u32, r: &LastReload) -> ExitCode {
    let text: Vec<String> = r
        .lines
        .iter()
        .map(|l| health::printable(l.as_bytes()))
        .collect();
    if r.ok {
        println!("cwpub (pid {pid}): {}", text.join("\n"));
        ExitCode::SUCCESS
    } else {
        eprintln!("cwpub (pid {pid}): {}", text.join("\n"));
        ExitCode::FAILURE
    }
}

/// Sends SIGHUP to `pid`.
#[cfg(unix)]
fn hangup(pid: u32) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).map_err(|_| anyhow!("pid {pid} is out of range"))?;
    // SAFETY: kill(2) has no memory effects; any pid and signal are safe to pass.
    if unsafe { libc::kill(raw, libc::SIGHUP) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::EPERM) => anyhow!(
            "not permitted to signal cwpub (pid {pid}); run cwpub reload as the daemon's user or as root"
        ),
        Some(libc::ESRCH) => anyhow!("cwpub (pid {pid}) is no longer running"),
        _ => anyhow!("cannot signal cwpub (pid {pid}): {e}"),
    })
}

#[cfg(not(unix))]
fn hangup(_pid: u32) -> anyhow::Result<()> {
    bail!("cwpub reload needs a Unix system (it sends SIGHUP); restart the daemon instead")
}

/// The addresses `pid` listens on with the IP of `configured` (whose port
/// is 0), read from its sockets (Linux `/proc`); none when they cannot be told.
fn listeners(pid: u32, configured: SocketAddr) -> Vec<SocketAddr> {
    let mut inodes = std::collections::HashSet::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let table = if configured.is_ipv4() { "tcp" } else { "tcp6" };
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode.
            if f.len() < 10 || f[3] != "0A" || !inodes.contains(f[9]) {
                return None;
            }
            let addr = parse_proc_addr(f[1])?;
            (addr.ip() == configured.ip()).then_some(addr)
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6), as
/// `/proc/net/tcp*` writes them: 32-bit words in the host's byte order.
fn parse_proc_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(|w| w.swap_bytes().to_be_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The daemon to reload: `pid` when given (it must be `cwpub run`), else the
/// `cwpub run` started with `config`, else the only `cwpub run` running.
fn find(pid: Option<u32>, config: Option<&Path>) -> anyhow::Result<Daemon> {
    if let Some(pid) = pid {
        return match daemon_at(pid) {
            Some(d) => Ok(d),
            None if Path::new(&format!("/proc/{pid}")).exists() => Err(anyhow!(
                "pid {pid} is not a `cwpub run` process; pass the daemon's pid"
            )),
            // No /proc (or it hides the process): trust the caller.
            None => Ok(Daemon { pid, config: None }),
        };
    }
    let all = running()?;
    let wanted = config.map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.to_path_buf()));
    let matching: Vec<&Daemon> = all
        .iter()
        .filter(|d| match (&wanted, &d.config) {
            (Some(w), Some(c)) => std::fs::canonicalize(c).is_ok_and(|c| c == *w),
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(Daemon {
            pid: one.pid,
            config: one.config.clone(),
        }),
        [] => Err(match config {
            Some(c) if !all.is_empty() => anyhow!(
                "no `cwpub run` was started with {}; running: {}; pass --pid",
                c.display(),
                describe(&all)
            ),
            _ => anyhow!("no `cwpub run` process found; start one, or pass --pid"),
        }),
        many => Err(anyhow!(
            "{} `cwpub run` processes match ({}); pass the config file or --pid",
            many.len(),
            describe(
                &many
                    .iter()
                    .map(|d| Daemon {
                        pid: d.pid,
                        config: d.config.clone()
                    })
                    .collect::<Vec<_>>()
            )
        )),
    }
}

fn describe(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| match &d.config {
            Some(c) => format!("pid {} ({})", d.pid, c.display()),
            None => format!("pid {}", d.pid),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every `cwpub run` process this user can see, except this one.
fn running() -> anyhow::Result<Vec<Daemon>> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc")
        .context("cannot list processes (/proc); pass the daemon's --pid")?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(daemon_at)
        .collect())
}

/// The process `pid` when it is `cwpub run`, with the config path it was
/// given (made absolute from the process's working directory).
fn daemon_at(pid: u32) -> Option<Daemon> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let config = run_config(&args)?;
    let config = config.map(|c| {
        let c = PathBuf::from(c);
        if c.is_absolute() {
            c
        } else {
            match std::fs::read_link(format!("/proc/{pid}/cwd")) {
                Ok(cwd) => cwd.join(c),
                Err(_) => c,
            }
        }
    });
    Some(Daemon { pid, config })
}

/// For the arguments of a `cwpub run` process: `Some(config)` (the config
/// argument, when it can be told); `None` for any other process.
fn run_config(args: &[String]) -> Option<Option<String>> {
    let program = Path::new(args.first()?).file_name()?.to_str()?;
    if program != "cwpub" {
        return None;
    }
    let mut rest = args[1..].iter().skip_while(|a| a.starts_with('-'));
    if rest.next()? != "run" {
        return None;
    }
    Some(rest.find(|a| !a.starts_with('-')).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_cwpub_run_command_line_names_its_config() {
        assert_eq!(
            run_config(&args("/usr/local/bin/cwpub run /etc/cwpub/cwpub.toml")),
            Some(Some("/etc/cwpub/cwpub.toml".into()))
        );
        assert_eq!(
            run_config(&args("cwpub run --watch cwpub.toml")),
            Some(Some("cwpub.toml".into()))
        );
        assert_eq!(run_config(&args("cwpub run")), Some(None));
        assert_eq!(run_config(&args("cwpub check cwpub.toml")), None);
        assert_eq!(run_config(&args("vim cwpub run x.toml")), None);
        assert_eq!(run_config(&args("/bin/cwpubx run x.toml")), None);
    }

    #[test]
    fn proc_net_tcp_addresses_are_read_in_host_byte_order() {
        // As a little-endian host writes them.
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_proc_addr("0100007F:2454"),
                Some("127.0.0.1:9300".parse().unwrap())
            );
            assert_eq!(
                parse_proc_addr("00000000000000000000000001000000:1F90"),
                Some("[::1]:8080".parse().unwrap())
            );
        }
        assert_eq!(parse_proc_addr("zz:1F90"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_port_a_process_got_is_found_among_its_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let got = listener.local_addr().unwrap();
        let found = listeners(std::process::id(), "127.0.0.1:0".parse().unwrap());
        assert!(found.contains(&got), "{got} not in {found:?}");
    }

    #[test]
    fn the_last_reload_is_read_from_readyz() {
        let ok = parse_last_reload(
            "ready\nlast reload #3 at 2026-12-06T16:00:00.000Z: ok (reload: 1 job added)\n",
        );
        assert_eq!((ok.number, ok.ok, ok.lines.len()), (3, true, 1));
        let failed = parse_last_reload(
            "not ready\n- sink cw: circuit open\nlast reload #4 at 2026-12-06T16:00:01.000Z: failed, the configuration in force is unchanged:\n  - cwpub.toml: jobs[0]: unknown key \"shedule\"\n  - and 2 more (see the log)\n",
        );
        assert_eq!(
            (failed.number, failed.ok, failed.lines.len()),
            (4, false, 3)
        );
        let none = parse_last_reload("ready\n");
        assert_eq!((none.number, none.lines.len()), (0, 0));
    }
}
