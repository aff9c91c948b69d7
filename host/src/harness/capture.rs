//! Collects what a guest sends through `diagnostics.log` (the host logs it
//! under the `cwpub::guest` target) so `cwpub test` can show it with the case
//! that failed instead of interleaving it with the report.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The target the host logs guest diagnostics under.
pub const GUEST_TARGET: &str = "cwpub::guest";

/// A tracing layer that keeps guest diagnostics until [`take`](Self::take)n.
#[derive(Debug, Clone, Default)]
pub struct DiagnosticsCapture {
    lines: Arc<Mutex<Vec<String>>>,
}

impl DiagnosticsCapture {
    /// Everything captured since the last call, as `LEVEL message` lines.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<S: Subscriber> Layer<S> for DiagnosticsCapture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != GUEST_TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let line = format!("{:<5} {}", event.metadata().level(), message.0);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

/// Picks the `message` field out of an event.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn only_guest_diagnostics_are_kept_and_take_drains_them() {
        let capture = DiagnosticsCapture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "cwpub::guest", job = "j", invocation = "i", "composing {}", 3);
            tracing::info!(target: "cwpub::guest::load", "not a diagnostic");
        });
        assert_eq!(capture.take(), ["WARN  composing 3"]);
        assert!(capture.take().is_empty());
    }
}
