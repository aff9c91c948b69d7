//! The per-run sandbox: a fresh store state with a default-deny WASI context
//! (no env, args, preopened dirs or sockets; captured, capped stdio), the
//! memory limiter, and the host side of the `diagnostics` import.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::cwpub::publisher::{diagnostics, types};
use super::limits::{MemoryLimiter, RunLimits};
use super::stdio::CappedPipe;

/// Longest diagnostic message kept, in bytes.
pub(crate) const MAX_DIAGNOSTIC_BYTES: usize = 4096;
/// Most random bytes one `get-random-bytes` call may ask the host for.
pub(crate) const MAX_RANDOM_BYTES: u64 = 64 << 10;
/// Most diagnostic messages kept per run.
pub(crate) const MAX_DIAGNOSTICS_PER_RUN: usize = 100;

/// Everything one store owns for one guest call.
pub(crate) struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) stdout: CappedPipe,
    pub(crate) stderr: CappedPipe,
    job: Arc<str>,
    invocation_id: Arc<str>,
    diagnostics_kept: usize,
    /// Diagnostic messages beyond the per-run cap, counted instead of logged.
    pub(crate) diagnostics_dropped: usize,
}

impl RunState {
    /// A sandbox for one call of `job`'s guest.
    pub(crate) fn new(job: Arc<str>, invocation_id: Arc<str>, limits: &RunLimits) -> Self {
        let stdout = CappedPipe::new("stdout", limits.max_stdio_bytes);
        let stderr = CappedPipe::new("stderr", limits.max_stdio_bytes);
        // The builder adds no env, args or preopens and closes stdin; the
        // network is denied explicitly rather than by relying on defaults.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(10_000);
        RunState {
            wasi,
            table,
            limiter: MemoryLimiter::new(limits.max_memory_bytes),
            stdout,
            stderr,
            job,
            invocation_id,
            diagnostics_kept: 0,
            diagnostics_dropped: 0,
        }
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for RunState {}

impl diagnostics::Host for RunState {
    fn log(&mut self, level: types::Level, message: String) {
        if self.diagnostics_kept >= MAX_DIAGNOSTICS_PER_RUN {
            self.diagnostics_dropped += 1;
            return;
        }
        self.diagnostics_kept += 1;
        let message = truncate(&message, MAX_DIAGNOSTIC_BYTES);
        let (job, invocation) = (&*self.job, &*self.invocation_id);
        match level {
            types::Level::Trace => {
                tracing::trace!(target: "cwpub::guest", job, invocation, "{message}")
            }
            types::Level::Debug => {
                tracing::debug!(target: "cwpub::guest", job, invocation, "{message}")
            }
            types::Level::Info => {
                tracing::info!(target: "cwpub::guest", job, invocation, "{message}")
            }
            types::Level::Warn => {
                tracing::warn!(target: "cwpub::guest", job, invocation, "{message}")
            }
            types::Level::Error => {
                tracing::error!(target: "cwpub::guest", job, invocation, "{message}")
            }
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… [{} bytes cut]", &s[..end], s.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééé", 3);
        assert!(cut.starts_with("é… [4 bytes cut]"), "{cut}");
    }
}
