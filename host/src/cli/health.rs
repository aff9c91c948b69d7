//! `cwpub health [config]`: asks a running daemon's observe endpoint whether
//! it is alive (`/healthz`) or ready (`/readyz`) and exits 0 (HTTP 200) or 1
//! (anything else, including no answer within the timeout). An image without
//! curl — a `scratch` container's `HEALTHCHECK`, a Kubernetes or ECS exec
//! probe — probes the daemon with its own binary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use cwpub::config;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;

/// At most this much of an answer's body is read and shown.
const MAX_BODY_BYTES: usize = 4096;

/// Arguments of `cwpub health`.
#[derive(Args)]
pub struct HealthArgs {
    /// The daemon's config file; its `[observe] listen` (or CWPUB_OBSERVE_LISTEN)
    /// names the address to ask. Without it: CWPUB_OBSERVE_LISTEN, else 127.0.0.1:9464.
    config: Option<PathBuf>,
    /// Ask `/readyz` (guests loaded, no open circuit, credentials working)
    /// instead of `/healthz` (the daemon answers).
    #[arg(long)]
    ready: bool,
    /// The observe address to ask (HOST:PORT); wins over the config and the environment.
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Give up (exit 1) when there is no full answer within this time, e.g. `2s`, `500ms`.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Runs the command: one line on stdout when healthy, on stderr when not.
pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let addr = match resolve_addr(&args).await {
        Ok(addr) => probe_addr(addr),
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let url = format!("http://{addr}{path}");
    match tokio::time::timeout(args.timeout, get(addr, path)).await {
        Ok(Ok((200, body))) => {
            println!("healthy: {url} answered 200 {}", printable(&body));
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok((status, body))) => {
            eprintln!("unhealthy: {url} answered {status}: {}", printable(&body));
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(e)) => {
            eprintln!("unhealthy: {url}: {e:#}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!(
                "unhealthy: {url}: no answer within {}",
                humantime::format_duration(args.timeout)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--addr`, else the config's observe address, else CWPUB_OBSERVE_LISTEN, else the default.
async fn resolve_addr(args: &HealthArgs) -> anyhow::Result<SocketAddr> {
    if let Some(text) = &args.addr {
        return lookup(text, args.timeout).await;
    }
    if let Some(path) = &args.config {
        let config = config::load(path, &config::process_env()).map_err(|e| {
            anyhow!(
                "cannot read the observe address from {}: {}",
                path.display(),
                e.lines().join("; ")
            )
        })?;
        if !config.observe.enabled {
            bail!(
                "the observe endpoint is disabled in {} ([observe] enabled = false or CWPUB_OBSERVE_ENABLED); enable it to probe the daemon",
                path.display()
            );
        }
        return Ok(config.observe.listen);
    }
    // As the config reads it: a blank variable counts as unset.
    let from_env = std::env::var(config::ENV_OBSERVE_LISTEN).unwrap_or_default();
    let (text, source) = match from_env.trim() {
        "" => (config::DEFAULT_OBSERVE_LISTEN, "the default"),
        v => (v, config::ENV_OBSERVE_LISTEN),
    };
    text.parse().map_err(|_| {
        anyhow!("{source} {text:?}: expected an IP address and port like \"127.0.0.1:9464\"")
    })
}

/// The address `--addr` names (HOST:PORT), looked up within `timeout`.
pub(super) async fn lookup(text: &str, timeout: Duration) -> anyhow::Result<SocketAddr> {
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host(text))
        .await
        .map_err(|_| anyhow!("--addr {text:?}: no address within the timeout"))?;
    found
        .with_context(|| format!("--addr {text:?}: expected HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("--addr {text:?}: the name has no address"))
}

/// A daemon listening on every interface (`0.0.0.0`, `::`) is asked on loopback.
pub(super) fn probe_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// One HTTP/1.1 GET; returns the status and the first [`MAX_BODY_BYTES`] of the body.
pub(super) async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("cannot connect (is `cwpub run` running with [observe] enabled?)")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let request = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(
            header::USER_AGENT,
            concat!("cwpub-health/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("no HTTP answer")?;
    let status = response.status().as_u16();
    // A longer body is cut, not an error: the status is the answer.
    let mut body = Vec::new();
    let mut incoming = response.into_body();
    while body.len() < MAX_BODY_BYTES {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => bail!("reading the answer: {e}"),
            None => break,
        }
    }
    body.truncate(MAX_BODY_BYTES);
    conn.abort();
    Ok((status, body.into()))
}

/// The body on one line: lines joined with "; ", control characters escaped,
/// at most [`MAX_BODY_BYTES`] (it comes from whatever listens on that port).
pub(super) fn printable(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:9464".parse().unwrap()),
            "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            probe_addr("[::]:9464".parse().unwrap()),
            "[::1]:9464".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            probe_addr("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn bodies_are_shown_on_one_escaped_line() {
        assert_eq!(
            printable(b"not ready\n- circuit open\n"),
            "not ready; - circuit open"
        );
        assert_eq!(printable(b"a\x1b[31mb\tc"), "a\\u{1b}[31mb\\tc");
    }
}
