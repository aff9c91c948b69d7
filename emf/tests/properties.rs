//! Property tests: whatever the builder accepts it flushes as valid documents
//! carrying exactly the accepted samples; documents read back to the same
//! metrics; the validator never panics and agrees with serde_json on syntax.

mod common;

use std::collections::BTreeMap;

use common::NOW;
use cwpub_emf::{
    DimensionSet, MetricsLogger, StorageResolution, Unit, ViolationKind, read_metrics, validate,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// One metric to put: name, unit, resolution and samples.
#[derive(Debug, Clone)]
struct MetricSpec {
    name: String,
    unit: Unit,
    high_resolution: bool,
    values: Vec<f64>,
}

/// Everything a random logger session does.
#[derive(Debug, Clone)]
struct Session {
    namespace: String,
    defaults: Vec<(String, String)>,
    sets: Vec<Vec<(String, String)>>,
    use_default: bool,
    properties: Vec<(String, Value)>,
    metrics: Vec<MetricSpec>,
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mostly well-formed names from a small pool, so keys collide and sets overlap.
        "[A-E][a-c]{0,2}".prop_map(String::from),
        // Sometimes anything printable, including names the builder must refuse.
        "[ -~]{0,12}",
        // Rarely non-ASCII or reserved.
        prop_oneof![
            Just("_aws".to_string()),
            Just("Zürich".to_string()),
            Just(":x".to_string())
        ],
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6f64..1e6,
        2 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        2 => any::<f64>(),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e300), Just(1e-200), Just(2f64.powi(360))],
    ]
}

fn metric() -> impl Strategy<Value = MetricSpec> {
    (
        name(),
        prop::sample::select(Unit::ALL.to_vec()),
        any::<bool>(),
        prop_oneof![
            6 => prop::collection::vec(value(), 1..4),
            1 => prop::collection::vec(value(), 95..260),
        ],
    )
        .prop_map(|(name, unit, high_resolution, values)| MetricSpec {
            name,
            unit,
            high_resolution,
            values,
        })
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (name(), prop_oneof![9 => "[a-z0-9]{1,8}", 1 => "[ -~]{0,6}"]),
        0..5,
    )
}

fn property() -> impl Strategy<Value = (String, Value)> {
    let json_value = prop_oneof![
        "[ -~\n\u{0}é✓]{0,20}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!({"nested": [1, "two", null]})),
    ];
    (name(), json_value)
}

fn session() -> impl Strategy<Value = Session> {
    (
        prop_oneof![Just("cwpub".to_string()), "[A-Za-z0-9._/#: -]{1,20}"],
        pairs(),
        prop::collection::vec(pairs(), 0..4),
        any::<bool>(),
        prop::collection::vec(property(), 0..5),
        prop_oneof![
            3 => prop::collection::vec(metric(), 0..12),
            1 => prop::collection::vec(metric(), 95..230),
        ],
    )
        .prop_map(
            |(namespace, defaults, sets, use_default, properties, metrics)| Session {
                namespace,
                defaults,
                sets,
                use_default,
                properties,
                metrics,
            },
        )
}

/// One accepted sample: metric name, unit, resolution in seconds, value bits.
type Sample = (String, &'static str, u32, u64);

/// Replays `session`, keeping only what the builder accepts; returns the logger
/// and the accepted (name, unit, resolution, value) samples.
fn replay(session: &Session) -> Option<(MetricsLogger, Vec<Sample>)> {
    let mut logger = MetricsLogger::new(&session.namespace).ok()?;
    logger.set_timestamp(NOW).unwrap();
    if let Ok(defaults) = DimensionSet::from_pairs(session.defaults.clone()) {
        let _ = logger.set_default_dimensions(defaults);
    }
    let sets: Vec<DimensionSet> = session
        .sets
        .iter()
        .filter_map(|pairs| DimensionSet::from_pairs(pairs.clone()).ok())
        .collect();
    if let Some((first, rest)) = sets.split_first() {
        let _ = logger.set_dimensions([first.clone()], session.use_default);
        for set in rest {
            let _ = logger.put_dimensions(set.clone());
        }
    }
    for (key, value) in &session.properties {
        let _ = logger.put_property(key, value.clone());
    }
    let mut accepted = Vec::new();
    for spec in &session.metrics {
        let resolution = if spec.high_resolution {
            StorageResolution::High
        } else {
            StorageResolution::Standard
        };
        for &v in &spec.values {
            if logger
                .put_metric_with_resolution(&spec.name, v, spec.unit, resolution)
                .is_ok()
            {
                accepted.push((
                    spec.name.clone(),
                    spec.unit.as_str(),
                    resolution.seconds(),
                    normalise(v),
                ));
            }
        }
    }
    Some((logger, accepted))
}

/// The bits of `v`, with -0 folded into 0 (the builder writes both as `0`).
fn normalise(v: f64) -> u64 {
    if v == 0.0 {
        0f64.to_bits()
    } else {
        v.to_bits()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn flushed_documents_are_valid_and_carry_exactly_the_accepted_samples(session in session()) {
        let Some((mut logger, accepted)) = replay(&session) else { return Ok(()) };
        let sets = logger.dimension_sets();
        let documents = logger.flush().unwrap();
        prop_assert_eq!(documents.is_empty(), accepted.is_empty());
        let mut emitted = Vec::new();
        let mut first_properties: Option<BTreeMap<String, Value>> = None;
        for document in &documents {
            let violations = validate(document, NOW);
            prop_assert!(violations.is_empty(), "{}\n{:#?}", document, violations);
            let metrics = read_metrics(document).unwrap();
            prop_assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in &metrics {
                prop_assert!(!m.values.is_empty() && m.values.len() <= 100);
                prop_assert_eq!(&m.namespace, &session.namespace);
                prop_assert_eq!(m.timestamp_ms, NOW);
                let expected_sets: Vec<Vec<(String, String)>> = sets
                    .iter()
                    .map(|s| s.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
                    .collect();
                let expected_sets = if expected_sets.is_empty() { vec![vec![]] } else { expected_sets };
                prop_assert_eq!(&m.dimensions, &expected_sets);
                for &v in &m.values {
                    emitted.push((m.name.clone(), m.unit.as_str(), m.storage_resolution.seconds(), normalise(v)));
                }
            }
            // Properties repeat identically in every piece.
            let root: BTreeMap<String, Value> = serde_json::from_str(document).unwrap();
            let props: BTreeMap<String, Value> = root
                .into_iter()
                .filter(|(k, _)| k != "_aws" && session.properties.iter().any(|(p, _)| p == k) && metrics.iter().all(|m| &m.name != k))
                .collect();
            match &first_properties {
                None => first_properties = Some(props),
                Some(first) => prop_assert_eq!(first, &props),
            }
        }
        let mut accepted = accepted;
        accepted.sort();
        emitted.sort();
        prop_assert_eq!(emitted, accepted);
        prop_assert!(logger.flush().unwrap().is_empty());
    }

    #[test]
    fn builder_documents_round_trip(
        metrics in prop::collection::vec(("[A-Za-z][A-Za-z0-9_.]{0,20}", prop::sample::select(Unit::ALL.to_vec()), -1e12f64..1e12), 1..40),
    ) {
        let mut logger = MetricsLogger::new("cwpub/test").unwrap();
        logger.set_timestamp(NOW).unwrap();
        logger.put_dimensions(DimensionSet::from_pairs([("Service", "svc")]).unwrap()).unwrap();
        let mut expected: BTreeMap<String, (Unit, Vec<u64>)> = BTreeMap::new();
        for (name, unit, v) in &metrics {
            if logger.put_metric(name, *v, *unit).is_ok() {
                expected.entry(name.clone()).or_insert((*unit, Vec::new())).1.push(normalise(*v));
            }
        }
        let documents = logger.flush().unwrap();
        prop_assert_eq!(documents.len(), 1);
        let read: BTreeMap<String, (Unit, Vec<u64>)> = read_metrics(&documents[0])
            .unwrap()
            .into_iter()
            .map(|m| (m.name, (m.unit, m.values.into_iter().map(normalise).collect())))
            .collect();
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn validator_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = validate(&s, NOW);
    }

    #[test]
    fn validator_agrees_with_serde_json_on_syntax(s in r#"[\[\]{}",:0-9a-z_ .eE+\-\\]{0,40}"#) {
        let kinds: Vec<ViolationKind> = validate(&s, NOW).into_iter().map(|v| v.kind).collect();
        let ours_rejects = kinds.iter().any(|k| matches!(k, ViolationKind::InvalidJson | ViolationKind::NonFiniteValue | ViolationKind::EmptyMessage));
        match serde_json::from_str::<Value>(&s) {
            Ok(_) => prop_assert!(!ours_rejects, "{:?}: {:?}", s, kinds),
            Err(e) => prop_assert!(ours_rejects || e.to_string().contains("out of range"), "{:?}: serde says {}", s, e),
        }
    }

    #[test]
    fn validator_never_panics_on_arbitrary_json(doc in arbitrary_document()) {
        let text = doc.to_string();
        let violations = validate(&text, NOW);
        // A document the validator accepts is one CloudWatch can read.
        if violations.is_empty() {
            prop_assert!(read_metrics(&text).is_ok(), "{}", text);
        }
        if doc.get("_aws").is_none() && doc.is_object() {
            prop_assert!(violations.iter().any(|v| v.kind == ViolationKind::MissingAws));
        }
        prop_assert_eq!(violations, validate(&text, NOW));
    }
}

/// Any JSON value.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just(1.0), Just(60.0), Just(NOW as f64)].prop_map(Value::from),
        "[ -~é]{0,8}".prop_map(Value::from),
        prop::sample::select(vec![
            "_aws",
            "Timestamp",
            "CloudWatchMetrics",
            "Namespace",
            "Dimensions",
            "Metrics",
            "Name",
            "Unit",
            "Count",
            "A"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "_aws",
                    "Timestamp",
                    "CloudWatchMetrics",
                    "Namespace",
                    "Dimensions",
                    "Metrics",
                    "Name",
                    "Unit",
                    "StorageResolution",
                    "Values",
                    "Counts",
                    "Min",
                    "Max",
                    "Sum",
                    "Count",
                    "A",
                    "B"
                ])
                .prop_map(String::from),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON, or a valid document with one member replaced by arbitrary JSON.
fn arbitrary_document() -> impl Strategy<Value = Value> {
    let pointers = vec![
        "/_aws",
        "/_aws/Timestamp",
        "/_aws/CloudWatchMetrics",
        "/_aws/CloudWatchMetrics/0",
        "/_aws/CloudWatchMetrics/0/Namespace",
        "/_aws/CloudWatchMetrics/0/Dimensions",
        "/_aws/CloudWatchMetrics/0/Dimensions/0",
        "/_aws/CloudWatchMetrics/0/Dimensions/0/0",
        "/_aws/CloudWatchMetrics/0/Metrics",
        "/_aws/CloudWatchMetrics/0/Metrics/0",
        "/_aws/CloudWatchMetrics/0/Metrics/0/Name",
        "/_aws/CloudWatchMetrics/0/Metrics/0/Unit",
        "/Service",
        "/Latency",
    ];
    prop_oneof![
        any_json(),
        (prop::sample::select(pointers), any_json()).prop_map(|(pointer, replacement)| {
            let mut doc = common::base();
            if let Some(slot) = doc.pointer_mut(pointer) {
                *slot = replacement;
            }
            doc
        }),
    ]
}
