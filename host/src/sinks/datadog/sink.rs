//! The DataDog sink: the delivery core's adapter for DataDog's intakes.
//! `json-log` batches go to the logs intake, `emf` batches to the metrics
//! intake as series; each batch is encoded ([`super::encode`]) and sent as
//! one request ([`super::service`]), and the answer is mapped onto the
//! core's classes. Events DataDog cannot take (an item over its size, a
//! time outside its window, an EMF document that has no series) are dropped
//! and counted with their reason when the rest of the batch is accepted; a
//! batch that needs more than one request is split by the core.
//!
//! | DataDog answers | the core does |
//! |---|---|
//! | 2xx | accepted |
//! | 400 | drop as `rejected`, the reason counted and logged |
//! | 401, 403 | hold, as CloudWatch's AccessDenied (the key file is re-read) |
//! | 413 | split |
//! | 408, 429, 5xx, no answer | retry; 429 lowers the rate |

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::delivery::{Answer, BatchLimits, ErrorClass, EventRules, Failure, Item, Sink};
use crate::event::{PayloadKind, Target};
use crate::ledger::{DropReason, Ledger, Metrics};

use super::encode::{self, LogLimits, Plan, SeriesLimits, SkipReason};
use super::logs::{self, LogDefaults};
use super::retry::Class;
use super::series;
use super::service::{DatadogService, Outcome};
use super::window::{TimeRefusal, Window};

/// Most distinct 400 reasons counted per sink; later ones count as `other`.
const MAX_REASONS: usize = 32;

/// The DataDog sink.
pub struct DataDog {
    name: Arc<str>,
    service: DatadogService,
    defaults: LogDefaults,
    host: Option<String>,
    /// Skip reasons already explained in the log.
    explained: Mutex<HashSet<&'static str>>,
    rejections: Arc<Rejections>,
}

impl DataDog {
    /// A sink named `name` sending through `service`; log items get
    /// `defaults`, series the host resource `host`; its 400 reasons are
    /// counted in `ledger`'s registry.
    pub fn new(
        name: Arc<str>,
        service: DatadogService,
        defaults: LogDefaults,
        host: Option<String>,
        ledger: &Ledger,
    ) -> DataDog {
        DataDog {
            rejections: Rejections::register(ledger.metrics(), ledger, name.clone()),
            name,
            service,
            defaults,
            host,
            explained: Mutex::default(),
        }
    }

    fn encode(&self, kind: PayloadKind, batch: &[Item]) -> Plan {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match kind {
            PayloadKind::JsonLog => {
                encode::encode_logs(batch, &self.defaults, now_ms, LogLimits::DATADOG)
            }
            PayloadKind::Emf => {
                encode::encode_series(batch, self.host.as_deref(), now_ms, SeriesLimits::DATADOG)
            }
        }
    }

    /// Logs why an event kind is not sent, once per reason.
    fn explain(&self, reason: &SkipReason) {
        let first = self
            .explained
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reason.label());
        if first {
            tracing::warn!(sink = %self.name, reason = reason.label(), "DataDog cannot take an event: {reason}; it is dropped and counted (later ones only counted)");
        }
    }
}

/// How an event DataDog cannot take is counted.
pub(crate) fn drop_reason(reason: &SkipReason) -> DropReason {
    match reason {
        SkipReason::ItemTooLarge(_) | SkipReason::SeriesTooLarge { .. } => DropReason::Oversize,
        SkipReason::OutOfWindow(TimeRefusal::TooOld { .. }) => DropReason::TooOld,
        SkipReason::OutOfWindow(TimeRefusal::TooNew { .. }) => DropReason::TooNew,
        SkipReason::Unmappable(_) | SkipReason::NoSeries => DropReason::Unmappable,
    }
}

/// The core's view of an answer that was not accepted.
fn failure(outcome: &Outcome) -> Failure {
    let class = match outcome.class {
        Class::Throttled => ErrorClass::Throttled,
        // (Accepted answers are never turned into failures.)
        Class::Transient | Class::Accepted => ErrorClass::Transient,
        Class::TooLarge => ErrorClass::TooLarge,
        Class::BadRequest => ErrorClass::Rejected,
        // A rotated key is tried at once, not after the credential backoff.
        Class::Credentials if outcome.key_reloaded => ErrorClass::Transient,
        Class::Credentials => ErrorClass::Credentials,
        Class::Permanent => ErrorClass::Permanent,
    };
    let code = match outcome.status {
        Some(s) => format!("HTTP {s}"),
        None => outcome.class.label().to_string(),
    };
    let mut f = Failure::new(class, &code, &outcome.message);
    f.retry_after = outcome.retry_after;
    f
}

/// The request window of a DataDog intake as the core's per-event rules,
/// a minute inside DataDog's own so an event is not refused in flight.
fn rules_of(window: Window, max_message_bytes: usize) -> EventRules {
    let margin = 60_000;
    let ms = |v: i64| Duration::from_millis(v.saturating_sub(margin).max(1) as u64);
    EventRules {
        max_message_bytes,
        max_age: ms(window.max_age_ms),
        max_ahead: ms(window.max_ahead_ms),
    }
}

#[async_trait]
impl Sink for DataDog {
    fn service(&self) -> &'static str {
        "DataDog"
    }

    fn limits(&self, kind: PayloadKind) -> BatchLimits {
        match kind {
            // Items carry the message and a few fields the sink adds; the
            // encoder measures exactly and the core splits what does not fit.
            PayloadKind::JsonLog => BatchLimits {
                max_events: logs::MAX_ITEMS_PER_REQUEST,
                max_bytes: logs::MAX_REQUEST_BYTES * 9 / 10,
                per_event_bytes: 128,
                max_span_ms: None,
            },
            // EMF documents become series several times smaller once
            // compressed; the encoder keeps the 512,000-byte payload limit.
            PayloadKind::Emf => BatchLimits {
                max_events: 1_000,
                max_bytes: 2_000_000,
                per_event_bytes: 0,
                max_span_ms: None,
            },
        }
    }

    fn rules(&self, kind: PayloadKind) -> EventRules {
        match kind {
            PayloadKind::JsonLog => rules_of(logs::WINDOW, logs::MAX_ITEM_BYTES),
            PayloadKind::Emf => rules_of(series::WINDOW, logs::MAX_ITEM_BYTES),
        }
    }

    async fn send(&self, _target: &Target, kind: PayloadKind, batch: &[Item]) -> Answer {
        let plan = self.encode(kind, batch);
        let mut rejected: Vec<(Range<usize>, DropReason)> = Vec::new();
        for s in &plan.skipped {
            self.explain(&s.reason);
            rejected.push((s.event..s.event + 1, drop_reason(&s.reason)));
        }
        match plan.payloads.as_slice() {
            [] => Answer::Accepted { rejected },
            [payload] => {
                let outcome = self.service.send(payload).await;
                match outcome.class {
                    Class::Accepted => Answer::Accepted { rejected },
                    Class::BadRequest => {
                        self.rejections.count(&outcome.reason);
                        Answer::Failed(failure(&outcome))
                    }
                    _ => Answer::Failed(failure(&outcome)),
                }
            }
            more => Answer::Failed(Failure::new(
                ErrorClass::TooLarge,
                "too large",
                &format!(
                    "the batch needs {} DataDog requests; it is sent in halves",
                    more.len()
                ),
            )),
        }
    }

    fn credentials_hint(&self) -> &'static str {
        "check the API key (DD_API_KEY, or the variable or file the sink names) and that it belongs to this DataDog site"
    }
}

/// The reasons DataDog gave for refusing payloads (HTTP 400), counted per
/// sink and reason, for `/metrics`.
#[derive(Debug, Default)]
struct Rejections {
    counts: Mutex<BTreeMap<String, u64>>,
    sink: Arc<str>,
}

impl Rejections {
    fn count(&self, reason: &str) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let reason = if reason.is_empty() {
            "(none given)"
        } else {
            reason
        };
        let key = if c.contains_key(reason) || c.len() < MAX_REASONS {
            reason.to_string()
        } else {
            "other".to_string()
        };
        *c.entry(key).or_default() += 1;
    }

    /// A counter set for `sink`, written by the ledger's one collector of
    /// rejections (registered the first time).
    fn register(metrics: &Metrics, ledger: &Ledger, sink: Arc<str>) -> Arc<Rejections> {
        let all = ledger.extension(|| {
            let all = Arc::new(AllRejections::default());
            metrics.collector(Collect(all.clone()));
            all
        });
        let mine = Arc::new(Rejections {
            counts: Mutex::default(),
            sink,
        });
        all.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&mine));
        mine
    }
}

#[derive(Debug, Default)]
struct AllRejections(Mutex<Vec<std::sync::Weak<Rejections>>>);

#[derive(Debug)]
struct Collect(Arc<AllRejections>);

impl crate::ledger::Collector for Collect {
    fn encode(&self, mut e: crate::ledger::DescriptorEncoder) -> std::fmt::Result {
        let sinks: Vec<Arc<Rejections>> = self
            .0
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        let rows: Vec<(Vec<(&str, String)>, u64)> = sinks
            .iter()
            .flat_map(|r| {
                let counts = r.counts.lock().unwrap_or_else(PoisonError::into_inner);
                counts
                    .iter()
                    .map(|(reason, n)| {
                        (
                            vec![("sink", r.sink.to_string()), ("reason", reason.clone())],
                            *n,
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        crate::ledger::encode_counters(
            &mut e,
            "cwpub_sink_rejections",
            "Payloads a service refused as malformed (DataDog: HTTP 400), by sink and the reason it gave (at most 32 reasons per sink, then other).",
            rows,
        )
    }
}
