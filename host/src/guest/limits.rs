//! Per-run resource limits for a guest, with the defaults documented in the
//! WIT contract, and the memory limiter that enforces the linear-memory cap.

use std::time::Duration;

/// Limits applied to every run of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock deadline for one run (instantiate + `run` + collecting output).
    pub deadline: Duration,
    /// Maximum size of the guest's linear memories together, in bytes.
    pub max_memory_bytes: usize,
    /// Maximum number of events one run may return.
    pub max_events: usize,
    /// Maximum total message bytes one run may return.
    pub max_output_bytes: usize,
    /// Maximum captured bytes of stdout, and separately of stderr, before the run fails.
    pub max_stdio_bytes: usize,
}

impl RunLimits {
    /// Default wall-clock deadline per run.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
    /// Default linear-memory cap (64 MiB).
    pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;
    /// Default cap on events per run (one full PutLogEvents batch).
    pub const DEFAULT_MAX_EVENTS: usize = 10_000;
    /// Default cap on message bytes per run (8 MiB).
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 8 << 20;
    /// Default cap on captured stdout and stderr, each (64 KiB).
    pub const DEFAULT_MAX_STDIO_BYTES: usize = 64 << 10;
    /// The largest memory cap a job may ask for (the pooling allocator sizes its slots for it).
    pub const MAX_MEMORY_CEILING: usize = 1 << 30;
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            deadline: Self::DEFAULT_DEADLINE,
            max_memory_bytes: Self::DEFAULT_MAX_MEMORY_BYTES,
            max_events: Self::DEFAULT_MAX_EVENTS,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            max_stdio_bytes: Self::DEFAULT_MAX_STDIO_BYTES,
        }
    }
}

/// Enforces the memory cap of one run over all of its linear memories
/// together (a component may have several) and remembers whether it was hit.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    /// Current total size of all linear memories.
    total_bytes: usize,
    /// Largest total size reached.
    pub(crate) peak_bytes: usize,
    /// The total the guest asked for when it was refused, if it was.
    pub(crate) refused: Option<usize>,
}

impl MemoryLimiter {
    pub(crate) fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            total_bytes: 0,
            peak_bytes: 0,
            refused: None,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .total_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.max_bytes {
            self.refused = Some(total);
            return Ok(false);
        }
        self.total_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter as _;

    use super::MemoryLimiter;

    #[test]
    fn the_cap_covers_all_memories_together() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(
            limiter.memory_growing(60, 70, None).unwrap(),
            "first memory grows to 70"
        );
        assert!(
            !limiter.memory_growing(0, 40, None).unwrap(),
            "a second memory would make 110"
        );
        assert_eq!(limiter.refused, Some(110));
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert_eq!(limiter.peak_bytes, 100);
    }
}
