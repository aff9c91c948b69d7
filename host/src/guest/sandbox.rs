//! The per-run sandbox: a fresh store state with a default-deny WASI context
//! (no env, args, preopened dirs or sockets; captured, capped stdio), the
//! memory limiter, and the host side of the `diagnostics` import.
//!
//! A diagnostic message is read in place from the guest's memory and only
//! its first 4 KiB are ever copied, escaped, into the host's log, so a
//! 10 MiB message costs the host nothing but the cut. At most
//! [`MAX_DIAGNOSTICS_PER_RUN`] are logged per run, within the job's
//! [`LogBudget`]; the rest are counted.

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, ResourceTable, WasmStr};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, cwpub::publisher::types};
use super::limits::{MemoryLimiter, RunLimits};
use super::stdio::CappedPipe;
use crate::untrusted::{GuestText, LogBudget};

/// Most random bytes one `get-random-bytes` call may ask the host for.
pub(crate) const MAX_RANDOM_BYTES: u64 = 64 << 10;
/// Most diagnostic messages logged per run.
pub(crate) const MAX_DIAGNOSTICS_PER_RUN: usize = 100;
/// Where guest diagnostics are logged (the `tracing` target).
pub const DIAGNOSTICS_TARGET: &str = "cwpub::guest";

/// Everything one store owns for one guest call.
pub(crate) struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) stdout: CappedPipe,
    pub(crate) stderr: CappedPipe,
    job: Arc<str>,
    invocation_id: Arc<str>,
    log_budget: Arc<LogBudget>,
    diagnostics_kept: usize,
    /// Diagnostic messages beyond the per-run cap, counted instead of logged.
    pub(crate) diagnostics_dropped: usize,
}

impl RunState {
    /// A sandbox for one call of `job`'s guest, logging within `log_budget`.
    pub(crate) fn new(
        job: Arc<str>,
        invocation_id: Arc<str>,
        limits: &RunLimits,
        log_budget: Arc<LogBudget>,
    ) -> Self {
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
            log_budget,
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

/// Links the `cwpub:publisher` imports: the `diagnostics` interface, whose
/// `log` reads its message in place instead of copying it (see the module docs).
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    // `types` holds types only; guests that use them import it all the same.
    linker.instance(&format!("cwpub:publisher/types@{}", bindings::WIT_VERSION))?;
    let mut diagnostics = linker.instance(&format!(
        "cwpub:publisher/diagnostics@{}",
        bindings::WIT_VERSION
    ))?;
    diagnostics.func_wrap(
        "log",
        |mut store: StoreContextMut<'_, RunState>, (level, message): (types::Level, WasmStr)| {
            if !store.data_mut().take_diagnostic_slot(level) {
                return Ok(());
            }
            let text = GuestText::new(&message.to_str(&store)?);
            store.data().log_diagnostic(level, &text);
            Ok(())
        },
    )
}

impl RunState {
    /// Whether a diagnostic at `level` is to be logged: its level is enabled
    /// and the run is under its cap (otherwise it is counted as dropped).
    fn take_diagnostic_slot(&mut self, level: types::Level) -> bool {
        if !level_enabled(level) {
            return false;
        }
        if self.diagnostics_kept >= MAX_DIAGNOSTICS_PER_RUN {
            self.diagnostics_dropped += 1;
            return false;
        }
        self.diagnostics_kept += 1;
        true
    }

    /// Logs one diagnostic, escaped and capped, if the job's budget allows.
    fn log_diagnostic(&self, level: types::Level, message: &GuestText) {
        let (job, invocation) = (&*self.job, &*self.invocation_id);
        // What the record adds beyond the message: target, level, fields.
        let overhead = 64 + job.len() + invocation.len();
        let rendered = message.to_string();
        if !self.log_budget.admit(rendered.len() + overhead) {
            return;
        }
        match level {
            types::Level::Trace => {
                tracing::trace!(target: DIAGNOSTICS_TARGET, job, invocation, "{rendered}")
            }
            types::Level::Debug => {
                tracing::debug!(target: DIAGNOSTICS_TARGET, job, invocation, "{rendered}")
            }
            types::Level::Info => {
                tracing::info!(target: DIAGNOSTICS_TARGET, job, invocation, "{rendered}")
            }
            types::Level::Warn => {
                tracing::warn!(target: DIAGNOSTICS_TARGET, job, invocation, "{rendered}")
            }
            types::Level::Error => {
                tracing::error!(target: DIAGNOSTICS_TARGET, job, invocation, "{rendered}")
            }
        }
    }

    /// Logs (within the job's budget) how many diagnostics the per-run cap dropped.
    pub(crate) fn report_dropped_diagnostics(&self) {
        if self.diagnostics_dropped > 0 && self.log_budget.admit(160 + self.job.len()) {
            tracing::warn!(
                job = &*self.job,
                dropped = self.diagnostics_dropped,
                "guest sent more diagnostics than the per-run cap of {MAX_DIAGNOSTICS_PER_RUN}; the rest were not logged"
            );
        }
    }
}

/// Whether the host's log filter lets guest diagnostics at `level` through.
fn level_enabled(level: types::Level) -> bool {
    match level {
        types::Level::Trace => tracing::enabled!(target: DIAGNOSTICS_TARGET, tracing::Level::TRACE),
        types::Level::Debug => tracing::enabled!(target: DIAGNOSTICS_TARGET, tracing::Level::DEBUG),
        types::Level::Info => tracing::enabled!(target: DIAGNOSTICS_TARGET, tracing::Level::INFO),
        types::Level::Warn => tracing::enabled!(target: DIAGNOSTICS_TARGET, tracing::Level::WARN),
        types::Level::Error => tracing::enabled!(target: DIAGNOSTICS_TARGET, tracing::Level::ERROR),
    }
}
