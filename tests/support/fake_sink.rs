//! A fake sink for tests of the delivery core itself: it notes every
//! request in a shared [`Journal`] (so tests can order it against disk work),
//! keeps what it accepted, and fails every request while told to. It
//! implements the same contract as the CloudWatch and DataDog adapters.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cwpub::delivery::{Answer, BatchLimits, ErrorClass, EventRules, Failure, Item, Sink};
use cwpub::event::{PayloadKind, Target};

/// A shared, ordered record of what happened, written by the fake sink and
/// the fake file system alike.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    /// Appends one entry.
    pub fn note(&self, what: impl Into<String>) {
        self.0.lock().expect("journal").push(what.into());
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().expect("journal").clone()
    }
}

#[derive(Default)]
struct State {
    accepted: Vec<String>,
    failing: Option<ErrorClass>,
}

/// See the module doc.
#[derive(Clone)]
pub struct FakeSink {
    state: Arc<Mutex<State>>,
    journal: Journal,
    limits: BatchLimits,
}

impl FakeSink {
    /// A sink accepting everything, writing into `journal`.
    pub fn new(journal: Journal) -> FakeSink {
        FakeSink {
            state: Arc::default(),
            journal,
            limits: BatchLimits {
                max_events: 100,
                max_bytes: 256 * 1024,
                per_event_bytes: 0,
                max_span_ms: None,
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake sink")
    }

    /// Every request fails with `class` while set.
    pub fn fail_with(&self, class: Option<ErrorClass>) {
        self.lock().failing = class;
    }

    /// Every message accepted, in the order accepted.
    pub fn accepted(&self) -> Vec<String> {
        self.lock().accepted.clone()
    }
}

#[async_trait]
impl Sink for FakeSink {
    fn service(&self) -> &'static str {
        "the fake service"
    }

    fn limits(&self, _kind: PayloadKind) -> BatchLimits {
        self.limits
    }

    fn rules(&self, _kind: PayloadKind) -> EventRules {
        EventRules {
            max_message_bytes: 64 * 1024,
            max_age: std::time::Duration::from_secs(86_400),
            max_ahead: std::time::Duration::from_secs(3_600),
        }
    }

    async fn send(&self, _target: &Target, _kind: PayloadKind, batch: &[Item]) -> Answer {
        let messages: Vec<String> = batch.iter().map(|i| i.message.clone()).collect();
        self.journal.note(format!(
            "send {}..{}",
            batch[0].seq,
            batch[batch.len() - 1].seq
        ));
        let mut s = self.lock();
        match s.failing {
            Some(class) => Answer::Failed(Failure::new(class, "scripted", "the script says so")),
            None => {
                s.accepted.extend(messages);
                Answer::accepted()
            }
        }
    }

    fn credentials_hint(&self) -> &'static str {
        "check the fake key"
    }
}
