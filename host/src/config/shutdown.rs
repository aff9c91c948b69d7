//! `[shutdown]`: what happens on SIGTERM/SIGINT.
//!
//! Adding a key: read it in [`read`] and add a field to [`ShutdownConfig`];
//! reading a key is what makes it allowed.

use std::time::Duration;

use toml::Table;

use super::error::Problems;
use super::reader::{Reader, Scope};

/// Default `[shutdown] drain_deadline`.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Longest `[shutdown] drain_deadline`.
pub const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// `[shutdown]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long delivery may keep sending buffered events after the last run finished (default 10 s).
    pub drain_deadline: Duration,
}

/// Reads `[shutdown]` (`t`, empty when absent).
pub(super) fn read(t: &Table, problems: &mut Problems) -> Option<ShutdownConfig> {
    let before = problems.len();
    let mut r = Reader::new(t, Scope::Section("shutdown".into()), problems);
    let drain_deadline = r
        .duration("drain_deadline", Duration::ZERO, MAX_DRAIN_DEADLINE)
        .unwrap_or(DEFAULT_DRAIN_DEADLINE);
    r.finish();
    (problems.len() == before).then_some(ShutdownConfig { drain_deadline })
}
