//! One table test per hard case of `emf/HARD_CASES.md` that this crate
//! decides: valid and invalid documents with the
//! exact set of violation kinds expected, plus the builder's side of the case.

mod common;

use common::{NOW, assert_kinds, assert_table, base, directive, with};
use cwpub_emf::limits::{MAX_FUTURE_MS, MAX_PAST_MS};
use cwpub_emf::names::{NameProblem, ValueProblem};
use cwpub_emf::{
    DimensionSet, EmfError, MetricsLogger, StorageResolution, Unit, ValidateOptions,
    ViolationKind as K, read_metrics, validate, validate_with,
};
use serde_json::{Value, json};

/// A logger for namespace `cwpub` at `NOW`.
fn logger() -> MetricsLogger {
    let mut logger = MetricsLogger::new("cwpub").unwrap();
    logger.set_timestamp(NOW).unwrap();
    logger
}

/// Flushes and asserts every document validates cleanly.
fn flush_valid(logger: &mut MetricsLogger) -> Vec<String> {
    let documents = logger.flush().unwrap();
    for document in &documents {
        assert_kinds(document, &[]);
    }
    documents
}

/// A document with `metrics` definitions (no unit) and their root values.
fn with_metrics(names: &[&str], values: Value) -> String {
    let mut doc = base();
    let definitions: Vec<Value> = names.iter().map(|n| json!({"Name": n})).collect();
    directive(&mut doc)["Metrics"] = Value::Array(definitions);
    let root = doc.as_object_mut().unwrap();
    root.remove("Latency");
    for (k, v) in values.as_object().unwrap() {
        root.insert(k.clone(), v.clone());
    }
    doc.to_string()
}

#[test]
fn hard_case_01_whole_message_is_one_object() {
    let doc = base().to_string();
    assert_table(&[
        (doc.clone(), &[]),
        (format!("{doc}\n"), &[K::SurroundingWhitespace]),
        (format!(" {doc}"), &[K::SurroundingWhitespace]),
        (format!("{doc}{doc}"), &[K::InvalidJson]),
        (
            format!("{doc}\n{doc}"),
            &[K::MultilineDocument, K::InvalidJson],
        ),
        (format!("[{doc}]"), &[K::NotAnObject]),
        ("42".into(), &[K::NotAnObject]),
    ]);
}

#[test]
fn hard_case_02_aws_is_reserved() {
    assert_table(&[
        (
            with(|d| directive(d)["Metrics"] = json!([{"Name": "_aws"}])),
            &[K::ReservedKey],
        ),
        (
            with(|d| directive(d)["Dimensions"] = json!([["_aws"]])),
            &[K::ReservedKey],
        ),
    ]);
    let doc = base().to_string();
    let twice = doc.replacen("\"_aws\":", "\"_aws\":{},\"_aws\":", 1);
    assert_ne!(twice, doc);
    assert_eq!(validate(&twice, NOW)[0].kind, K::DuplicateKey);
    let mut logger = logger();
    assert_eq!(
        logger.put_property("_aws", 1),
        Err(EmfError::ReservedKey { key: "_aws".into() })
    );
    assert!(matches!(
        logger.put_metric("_aws", 1.0, Unit::Count),
        Err(EmfError::InvalidMetricName {
            problem: NameProblem::ReservedKey,
            ..
        })
    ));
    assert!(matches!(
        DimensionSet::from_pairs([("_aws", "x")]),
        Err(EmfError::InvalidDimensionName {
            problem: NameProblem::ReservedKey,
            ..
        })
    ));
}

#[test]
fn hard_case_03_member_names_are_case_sensitive() {
    let renamed = base().to_string().replace("\"_aws\"", "\"_AWS\"");
    assert_kinds(&renamed, &[K::MissingAws]);
    assert!(validate(&renamed, NOW)[0].message.contains("\"_AWS\""));
    let lower = base()
        .to_string()
        .replace("CloudWatchMetrics", "cloudwatchMetrics");
    assert_kinds(&lower, &[K::MissingCloudWatchMetrics]);
    assert!(validate(&lower, NOW)[0].message.contains("case-sensitive"));
    assert_table(&[
        (
            base().to_string().replace("\"Namespace\"", "\"namespace\""),
            &[K::MissingNamespace],
        ),
        (
            base().to_string().replace("\"Timestamp\"", "\"timestamp\""),
            &[K::MissingTimestamp],
        ),
        (
            base().to_string().replace("\"Name\"", "\"name\""),
            &[K::InvalidMetricDefinition],
        ),
    ]);
}

#[test]
fn hard_case_04_one_root_key_one_role() {
    assert_table(&[(
        with(|d| directive(d)["Dimensions"] = json!([["Latency"]])),
        &[K::KeyCollision, K::DimensionValueNotString],
    )]);
    let doc = base().to_string();
    assert_kinds(
        &doc.replacen(
            "\"Service\":\"orders\"",
            "\"Service\":\"orders\",\"Service\":\"x\"",
            1,
        ),
        &[K::DuplicateKey],
    );
    let mut logger = logger();
    logger.put_metric("Requests", 1.0, Unit::Count).unwrap();
    assert!(matches!(
        logger.put_property("Requests", "x"),
        Err(EmfError::KeyCollision { .. })
    ));
    assert!(matches!(
        logger.put_dimensions(DimensionSet::from_pairs([("Requests", "x")]).unwrap()),
        Err(EmfError::KeyCollision { .. })
    ));
    logger.put_property("job", "a").unwrap();
    assert!(matches!(
        logger.put_metric("job", 1.0, Unit::Count),
        Err(EmfError::KeyCollision { .. })
    ));
    logger
        .put_dimensions(DimensionSet::from_pairs([("Op", "x")]).unwrap())
        .unwrap();
    assert!(matches!(
        logger.put_property("Op", "y"),
        Err(EmfError::KeyCollision { .. })
    ));
    assert!(matches!(
        logger.put_metric("Op", 1.0, Unit::Count),
        Err(EmfError::KeyCollision { .. })
    ));
}

#[test]
fn hard_case_05_duplicate_keys_anywhere_are_reported() {
    let doc = base().to_string();
    let nested = doc.replacen(
        "\"Service\":\"orders\"",
        "\"Service\":\"orders\",\"meta\":{\"a\":1,\"a\":2}",
        1,
    );
    assert_kinds(&nested, &[K::DuplicateKey]);
    assert_eq!(validate(&nested, NOW)[0].path, "/meta/a");
    let in_aws = doc.replacen("\"Timestamp\":", "\"Timestamp\":1,\"Timestamp\":", 1);
    assert_kinds(&in_aws, &[K::DuplicateKey]);
}

#[test]
fn hard_case_06_references_are_literal_root_keys() {
    assert_table(&[
        (
            with_metrics(&["a.b"], json!({"a": {"b": 1}})),
            &[K::MissingMetricValue],
        ),
        (with_metrics(&["a.b"], json!({"a.b": 1})), &[]),
        (
            with_metrics(&["a/b", "~0"], json!({"a/b": 1, "~0": 2})),
            &[],
        ),
        (
            with_metrics(&["/a"], json!({"a": 1})),
            &[K::MissingMetricValue],
        ),
    ]);
    let missing = with_metrics(&["a/b"], json!({}));
    assert_eq!(validate(&missing, NOW)[0].path, "/a~1b");
}

#[test]
fn hard_case_07_entity_keys_are_allowed() {
    let doc = with(|d| {
        directive(d)["Dimensions"] = json!([["Service", "Host"]]);
        d["Host"] = json!("ip-10-0-0-1");
        d["Environment"] = json!("prod");
        d["ECS.Cluster"] = json!("main");
    });
    assert_kinds(&doc, &[]);
}

#[test]
fn hard_case_08_agent_routing_members_are_rejected() {
    assert_table(&[
        (
            with(|d| d["_aws"]["LogGroupName"] = json!("other")),
            &[K::AgentRoutingMember],
        ),
        (
            with(|d| d["_aws"]["LogStreamName"] = json!("s")),
            &[K::AgentRoutingMember],
        ),
        (with(|d| d["_aws"]["Custom"] = json!("ignored")), &[]),
    ]);
}

#[test]
fn hard_case_09_at_most_100_metrics_per_directive() {
    let names: Vec<String> = (0..101).map(|i| format!("M{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let values: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.clone(), json!(1))).collect();
    assert_kinds(
        &with_metrics(&refs, Value::Object(values.clone())),
        &[K::TooManyMetrics],
    );
    assert_kinds(&with_metrics(&refs[..100], Value::Object(values)), &[]);

    let mut logger = logger();
    logger.put_property("event_id", "job:1").unwrap();
    for i in 0..250 {
        logger
            .put_metric(&format!("M{i}"), f64::from(i), Unit::Count)
            .unwrap();
    }
    let documents = flush_valid(&mut logger);
    assert_eq!(documents.len(), 3);
    let counts: Vec<usize> = documents
        .iter()
        .map(|d| read_metrics(d).unwrap().len())
        .collect();
    assert_eq!(counts, [100, 100, 50]);
    for document in &documents {
        let v: Value = serde_json::from_str(document).unwrap();
        assert_eq!(v["event_id"], "job:1");
        assert_eq!(v["_aws"]["Timestamp"], NOW);
        assert_eq!(v["Service"], Value::Null);
    }
}

#[test]
fn hard_case_10_at_most_100_values_per_metric() {
    let many: Vec<u32> = (0..101).collect();
    assert_kinds(&with(|d| d["Latency"] = json!(many)), &[K::TooManyValues]);
    assert_kinds(&with(|d| d["Latency"] = json!(many[..100])), &[]);

    let mut logger = logger();
    for i in 0..250 {
        logger
            .put_metric_with_resolution(
                "Latency",
                f64::from(i),
                Unit::Milliseconds,
                StorageResolution::High,
            )
            .unwrap();
    }
    let documents = flush_valid(&mut logger);
    assert_eq!(documents.len(), 3);
    let mut all = Vec::new();
    for document in &documents {
        let metrics = read_metrics(document).unwrap();
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0].unit, Unit::Milliseconds);
        assert_eq!(metrics[0].storage_resolution, StorageResolution::High);
        all.extend(metrics[0].values.iter().copied());
    }
    assert_eq!(all, (0..250).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn hard_case_11_splits_respect_the_byte_limit() {
    let mut logger = logger();
    logger.set_max_event_bytes(4_000);
    logger.put_property("blob", "x".repeat(1_000)).unwrap();
    for i in 0..100 {
        logger
            .put_metric(&format!("Metric{i:03}"), 1.5, Unit::Count)
            .unwrap();
    }
    let documents = logger.flush().unwrap();
    assert!(documents.len() > 1);
    let mut total = 0;
    for document in &documents {
        assert!(document.len() <= 4_000, "{} bytes", document.len());
        assert_eq!(
            validate_with(
                document,
                NOW,
                &ValidateOptions {
                    max_event_bytes: 4_000
                }
            ),
            vec![]
        );
        total += read_metrics(document).unwrap().len();
    }
    assert_eq!(total, 100);

    let mut too_big = logger.clone();
    too_big.put_property("blob", "x".repeat(5_000)).unwrap();
    too_big.put_metric("M", 1.0, Unit::Count).unwrap();
    assert!(matches!(
        too_big.flush(),
        Err(EmfError::DocumentTooLarge { max: 4_000, .. })
    ));
    assert_eq!(
        too_big.metric_count(),
        1,
        "a failed flush keeps the metrics"
    );

    let oversize = with(|d| d["blob"] = json!("x".repeat(5_000)));
    assert_eq!(
        validate_with(
            &oversize,
            NOW,
            &ValidateOptions {
                max_event_bytes: 4_000
            }
        )[0]
        .kind,
        K::EventTooLarge
    );
}

#[test]
fn hard_case_12_no_dimensions_is_an_empty_set_not_an_empty_list() {
    assert_table(&[
        (
            with(|d| directive(d)["Dimensions"] = json!([])),
            &[K::EmptyDimensions],
        ),
        (with(|d| directive(d)["Dimensions"] = json!([[]])), &[]),
        (
            with(|d| directive(d)["Dimensions"] = json!("Service")),
            &[K::InvalidDimensions],
        ),
        (
            with(|d| directive(d)["Dimensions"] = json!([["Service", 3]])),
            &[K::InvalidDimensions],
        ),
        (
            with(|d| {
                directive(d)
                    .as_object_mut()
                    .unwrap()
                    .remove("Dimensions")
                    .map(drop)
                    .unwrap()
            }),
            &[K::MissingDimensions],
        ),
    ]);
    let mut logger = logger();
    logger.put_metric("Heartbeat", 1.0, Unit::Count).unwrap();
    let documents = flush_valid(&mut logger);
    assert!(
        documents[0].contains("\"Dimensions\":[[]]"),
        "{}",
        documents[0]
    );
}

#[test]
fn hard_case_13_dimension_sets_are_deduped() {
    assert_table(&[
        (
            with(|d| {
                directive(d)["Dimensions"] = json!([["Service", "Op"], ["Op", "Service"]]);
                d["Op"] = json!("get");
            }),
            &[K::DuplicateDimensionSet],
        ),
        (
            with(|d| directive(d)["Dimensions"] = json!([["Service", "Service"]])),
            &[K::DuplicateDimensionKey],
        ),
    ]);
    let mut logger = logger();
    logger
        .put_dimensions(DimensionSet::from_pairs([("A", "1"), ("B", "2")]).unwrap())
        .unwrap();
    logger
        .put_dimensions(DimensionSet::from_pairs([("B", "2"), ("A", "1")]).unwrap())
        .unwrap();
    assert_eq!(logger.dimension_sets().len(), 1);
    assert!(matches!(
        DimensionSet::from_pairs([("A", "1"), ("A", "1")]),
        Err(EmfError::DuplicateDimensionKey { .. })
    ));
}

#[test]
fn hard_case_14_at_most_30_keys_per_set_defaults_included() {
    let set = |n: usize| {
        with(move |d| {
            let keys: Vec<String> = (0..n).map(|i| format!("D{i}")).collect();
            for k in &keys {
                d[k] = json!("v");
            }
            directive(d)["Dimensions"] = json!([keys]);
        })
    };
    assert_table(&[(set(30), &[]), (set(31), &[K::TooManyDimensions])]);
    let mut logger = logger();
    logger
        .set_default_dimensions(
            DimensionSet::from_pairs([("Service", "a"), ("Host", "h")]).unwrap(),
        )
        .unwrap();
    let wide = DimensionSet::from_pairs((0..29).map(|i| (format!("C{i}"), "v"))).unwrap();
    assert!(matches!(
        logger.put_dimensions(wide),
        Err(EmfError::TooManyDimensions { count: 31, max: 30 })
    ));
    let fits = DimensionSet::from_pairs((0..28).map(|i| (format!("C{i}"), "v"))).unwrap();
    logger.put_dimensions(fits).unwrap();
    assert_eq!(logger.dimension_sets()[0].len(), 30);
}

#[test]
fn hard_case_15_one_value_per_dimension_key() {
    let mut logger = logger();
    logger
        .put_dimensions(DimensionSet::from_pairs([("Op", "get")]).unwrap())
        .unwrap();
    let conflict = DimensionSet::from_pairs([("Op", "put"), ("Table", "t")]).unwrap();
    assert!(matches!(
        logger.put_dimensions(conflict),
        Err(EmfError::DimensionValueConflict { .. })
    ));
    assert_eq!(
        logger.dimension_sets().len(),
        1,
        "a refused call changes nothing"
    );
    // Default values are overridden per set; a conflict only arises between emitted sets.
    logger
        .set_default_dimensions(DimensionSet::from_pairs([("Op", "default")]).unwrap())
        .unwrap();
    let without_op = DimensionSet::from_pairs([("Table", "t")]).unwrap();
    assert!(matches!(
        logger.put_dimensions(without_op),
        Err(EmfError::DimensionValueConflict { .. })
    ));
    logger
        .set_dimensions(
            [DimensionSet::from_pairs([("Op", "custom")]).unwrap()],
            true,
        )
        .unwrap();
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    let documents = flush_valid(&mut logger);
    assert!(
        documents[0].contains("\"Op\":\"custom\""),
        "{}",
        documents[0]
    );
    // The validator cannot see this case: a JSON root holds one value per key.
}

#[test]
fn hard_case_16_dimension_keys_need_string_root_values() {
    assert_table(&[
        (
            with(|d| {
                d.as_object_mut()
                    .unwrap()
                    .remove("Service")
                    .map(drop)
                    .unwrap()
            }),
            &[K::MissingDimensionValue],
        ),
        (
            with(|d| d["Service"] = json!(3)),
            &[K::DimensionValueNotString],
        ),
        (
            with(|d| d["Service"] = json!(true)),
            &[K::DimensionValueNotString],
        ),
        (
            with(|d| d["Service"] = Value::Null),
            &[K::DimensionValueNotString],
        ),
        (
            with(|d| d["Service"] = json!({"name": "x"})),
            &[K::DimensionValueNotString],
        ),
    ]);
}

#[test]
fn hard_case_17_blank_dimension_values_are_rejected() {
    assert_table(&[
        (
            with(|d| d["Service"] = json!("")),
            &[K::InvalidDimensionValue],
        ),
        (
            with(|d| d["Service"] = json!("   ")),
            &[K::InvalidDimensionValue],
        ),
        (with(|d| d["Service"] = json!(" a ")), &[]),
    ]);
    assert!(matches!(
        DimensionSet::from_pairs([("Service", " ")]),
        Err(EmfError::InvalidDimensionValue {
            problem: NameProblem::Blank,
            ..
        })
    ));
}

#[test]
fn hard_case_18_dimension_name_and_value_rules() {
    let named = |name: &str| {
        let name = name.to_owned();
        with(move |d| {
            directive(d)["Dimensions"] = json!([[name.clone()]]);
            d[&name] = json!("v");
        })
    };
    assert_table(&[
        (named(":op"), &[K::InvalidDimensionName]),
        (named("op\tx"), &[K::InvalidDimensionName]),
        (named(&"d".repeat(251)), &[K::DimensionNameTooLong]),
        (named(&"d".repeat(250)), &[]),
        (named(""), &[K::InvalidDimensionName]),
        (
            with(|d| d["Service"] = json!("v".repeat(1025))),
            &[K::DimensionValueTooLong],
        ),
        (with(|d| d["Service"] = json!("v".repeat(1024))), &[]),
        (
            with(|d| d["Service"] = json!("a\u{1}b")),
            &[K::InvalidDimensionValue],
        ),
        (with(|d| d["Service"] = json!(":v")), &[]),
    ]);
    assert!(matches!(
        DimensionSet::from_pairs([(":op", "v")]),
        Err(EmfError::InvalidDimensionName {
            problem: NameProblem::LeadingColon,
            ..
        })
    ));
    assert!(DimensionSet::from_pairs([("d".repeat(251), "v")]).is_err());
    assert!(DimensionSet::from_pairs([("d", "v".repeat(1025))]).is_err());
}

#[test]
fn hard_case_19_non_ascii_identifiers_are_rejected() {
    assert_table(&[
        (
            with(|d| d["Service"] = json!("Zürich")),
            &[K::InvalidDimensionValue],
        ),
        (
            with_metrics(&["Latenz€"], json!({"Latenz€": 1})),
            &[K::InvalidMetricName],
        ),
    ]);
    assert!(DimensionSet::from_pairs([("City", "Zürich")]).is_err());
    assert!(logger().put_metric("Latenz€", 1.0, Unit::None).is_err());
}

#[test]
fn hard_case_20_every_metric_needs_a_numeric_root_value() {
    assert_table(&[
        (
            with(|d| {
                d.as_object_mut()
                    .unwrap()
                    .remove("Latency")
                    .map(drop)
                    .unwrap()
            }),
            &[K::MissingMetricValue],
        ),
        (
            with(|d| d["Latency"] = json!("12")),
            &[K::InvalidMetricValue],
        ),
    ]);
}

#[test]
fn hard_case_21_duplicate_definitions_are_merged() {
    let doc = with(|d| directive(d)["Metrics"] = json!([{"Name": "Latency"}, {"Name": "Latency"}]));
    assert_kinds(&doc, &[K::DuplicateMetricDefinition]);
    let mut logger = logger();
    logger
        .put_metric("Latency", 1.0, Unit::Milliseconds)
        .unwrap();
    logger
        .put_metric("Latency", 2.0, Unit::Milliseconds)
        .unwrap();
    let documents = flush_valid(&mut logger);
    let metrics = read_metrics(&documents[0]).unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].values, [1.0, 2.0]);
    assert!(
        documents[0].ends_with("\"Latency\":[1,2]}"),
        "{}",
        documents[0]
    );
}

#[test]
fn hard_case_22_same_metric_twice_in_one_namespace_and_set_is_double_counted() {
    let two = |namespace: &str, dims: Value| {
        let namespace = namespace.to_owned();
        with(move |d| {
            let first = directive(d).clone();
            let mut second = first.clone();
            second["Namespace"] = json!(namespace);
            second["Dimensions"] = dims;
            d["_aws"]["CloudWatchMetrics"] = json!([first, second]);
        })
    };
    assert_table(&[
        (
            two("cwpub", json!([["Service"]])),
            &[K::DoubleCountedMetric],
        ),
        (
            two("cwpub", json!([[], ["Service"]])),
            &[K::DoubleCountedMetric],
        ),
        (two("other", json!([["Service"]])), &[]),
        (two("cwpub", json!([[]])), &[]),
    ]);
}

#[test]
fn hard_case_23_metric_name_rules() {
    let long = "m".repeat(256);
    assert_table(&[
        (with_metrics(&[""], json!({"": 1})), &[K::InvalidMetricName]),
        (
            with_metrics(&["  "], json!({"  ": 1})),
            &[K::InvalidMetricName],
        ),
        (
            with_metrics(&[&long], json!({ long.clone(): 1 })),
            &[K::MetricNameTooLong],
        ),
        (
            with_metrics(&[&long[..255]], json!({ &long[..255]: 1 })),
            &[],
        ),
        (
            with(|d| directive(d)["Metrics"] = json!([{"Name": 5}])),
            &[K::InvalidMetricDefinition],
        ),
        (
            with(|d| directive(d)["Metrics"] = json!(["Latency"])),
            &[K::InvalidMetricDefinition],
        ),
    ]);
    assert!(matches!(
        logger().put_metric(&long, 1.0, Unit::Count),
        Err(EmfError::InvalidMetricName {
            problem: NameProblem::TooLong { len: 256, max: 255 },
            ..
        })
    ));
}

#[test]
fn hard_case_24_namespace_rules() {
    let ns = |n: Value| with(move |d| directive(d)["Namespace"] = n);
    assert_table(&[
        (ns(json!("")), &[K::InvalidNamespace]),
        (ns(json!("   ")), &[K::InvalidNamespace]),
        (ns(json!("a*b")), &[K::InvalidNamespace]),
        (ns(json!(":ns")), &[K::InvalidNamespace]),
        (ns(json!("AWS/EC2")), &[K::ReservedNamespace]),
        (ns(json!("n".repeat(256))), &[K::NamespaceTooLong]),
        (ns(json!("n".repeat(255))), &[]),
        (ns(json!("Ünï")), &[K::InvalidNamespace]),
        (ns(json!(7)), &[K::InvalidNamespace]),
        (ns(json!("a.b-c_d/e#f:g")), &[]),
    ]);
    assert!(matches!(
        MetricsLogger::new("AWS/Lambda"),
        Err(EmfError::InvalidNamespace { .. })
    ));
    assert!(MetricsLogger::new("").is_err());
}

#[test]
fn hard_case_25_namespaces_may_contain_spaces() {
    assert_kinds(&with(|d| directive(d)["Namespace"] = json!("My App")), &[]);
    assert!(MetricsLogger::new("My App").is_ok());
}

#[test]
fn hard_case_26_non_finite_values_are_never_emitted() {
    let doc = base().to_string();
    assert_table(&[
        (
            doc.replace("\"Latency\":12", "\"Latency\":NaN"),
            &[K::NonFiniteValue],
        ),
        (
            doc.replace("\"Latency\":12", "\"Latency\":[1,Infinity]"),
            &[K::NonFiniteValue],
        ),
        (
            doc.replace("\"Latency\":12", "\"Latency\":-Infinity"),
            &[K::NonFiniteValue],
        ),
        (
            with(|d| d["Latency"] = Value::Null),
            &[K::InvalidMetricValue],
        ),
    ]);
    let mut logger = logger();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            logger.put_metric("M", bad, Unit::Count),
            Err(EmfError::InvalidValue {
                problem: ValueProblem::NonFinite,
                ..
            })
        ));
    }
    assert!(logger.is_empty());
}

#[test]
fn hard_case_27_values_stay_within_2_pow_360() {
    let doc = base().to_string();
    assert_table(&[
        (
            doc.replace("\"Latency\":12", "\"Latency\":1e400"),
            &[K::ValueOutOfRange],
        ),
        (
            doc.replace("\"Latency\":12", "\"Latency\":3e108"),
            &[K::ValueOutOfRange],
        ),
        (
            doc.replace("\"Latency\":12", "\"Latency\":[1,-3e108]"),
            &[K::ValueOutOfRange],
        ),
        (
            doc.replace("\"Latency\":12", "\"Latency\":1e-200"),
            &[K::ValueOutOfRange],
        ),
        (doc.replace("\"Latency\":12", "\"Latency\":2e108"), &[]),
        (doc.replace("\"Latency\":12", "\"Latency\":0"), &[]),
    ]);
    assert!(matches!(
        logger().put_metric("M", 1e300, Unit::Count),
        Err(EmfError::InvalidValue {
            problem: ValueProblem::OutOfRange,
            ..
        })
    ));
}

#[test]
fn hard_case_28_large_integers() {
    let doc = base().to_string();
    assert_kinds(
        &doc.replace("\"Latency\":12", "\"Latency\":18446744073709551615"),
        &[],
    );
    let mut logger = logger();
    logger
        .put_metric("Bytes", 4_294_967_296.0, Unit::Bytes)
        .unwrap();
    logger
        .put_metric("Big", 9_007_199_254_740_991.0, Unit::Count)
        .unwrap();
    logger
        .put_metric("Huge", 2f64.powi(64), Unit::Count)
        .unwrap();
    let document = &flush_valid(&mut logger)[0];
    assert!(document.contains("\"Bytes\":4294967296"), "{document}");
    assert!(document.contains("\"Big\":9007199254740991"), "{document}");
    assert!(
        document.contains("\"Huge\":1.8446744073709552e19"),
        "{document}"
    );
}

#[test]
fn hard_case_29_only_numbers_are_metric_values() {
    assert_table(&[
        (
            with(|d| d["Latency"] = json!(true)),
            &[K::InvalidMetricValue],
        ),
        (
            with(|d| d["Latency"] = json!("100")),
            &[K::InvalidMetricValue],
        ),
        (
            with(|d| d["Latency"] = Value::Null),
            &[K::InvalidMetricValue],
        ),
        (
            with(|d| d["Latency"] = json!({"avg": 1})),
            &[K::InvalidMetricValue],
        ),
        (
            with(|d| d["Latency"] = json!([1, "2"])),
            &[K::InvalidMetricValue],
        ),
        (with(|d| d["Latency"] = json!(12.5)), &[]),
    ]);
}

#[test]
fn hard_case_30_histogram_objects() {
    let h = |v: Value| with(move |d| d["Latency"] = v);
    let many: Vec<u32> = (0..101).collect();
    assert_table(&[
        (h(json!({"Values": [1, 2], "Counts": [3, 4]})), &[]),
        (
            h(json!({"Values": [1, 2], "Counts": [3]})),
            &[K::InvalidHistogram],
        ),
        (
            h(json!({"Values": [1], "Counts": [-1]})),
            &[K::InvalidHistogram],
        ),
        (h(json!({"Values": [1]})), &[K::InvalidHistogram]),
        (
            h(json!({"Values": many, "Counts": many})),
            &[K::TooManyValues],
        ),
        (
            h(json!({"Values": [], "Counts": []})),
            &[K::EmptyValueArray],
        ),
        (
            h(json!({"Values": [12345], "Counts": [1]})).replace("12345", "1e400"),
            &[K::ValueOutOfRange],
        ),
        (h(json!({"Min": 1, "Max": 5, "Sum": 9, "Count": 3})), &[]),
        (
            h(json!({"Min": 6, "Max": 5, "Sum": 9, "Count": 3})),
            &[K::InvalidHistogram],
        ),
        (
            h(json!({"Min": 1, "Max": 5, "Count": 3})),
            &[K::InvalidHistogram],
        ),
        (
            h(json!({"Min": 1, "Max": 5, "Sum": 9, "Count": -3})),
            &[K::InvalidHistogram],
        ),
    ]);
}

#[test]
fn hard_case_31_no_empty_value_arrays() {
    assert_kinds(&with(|d| d["Latency"] = json!([])), &[K::EmptyValueArray]);
    let mut logger = logger();
    assert_eq!(logger.flush().unwrap(), Vec::<String>::new());
}

#[test]
fn hard_case_32_single_values_are_scalars_in_every_piece() {
    assert_kinds(&with(|d| d["Latency"] = json!([5])), &[]);
    let mut logger = logger();
    for i in 0..101 {
        logger.put_metric("M", f64::from(i), Unit::Count).unwrap();
    }
    logger.put_metric("Once", 7.0, Unit::Count).unwrap();
    let documents = flush_valid(&mut logger);
    assert_eq!(documents.len(), 2);
    assert!(documents[0].contains("\"Once\":7"), "{}", documents[0]);
    assert!(documents[1].ends_with("\"M\":100}"), "{}", documents[1]);
}

#[test]
fn hard_case_33_units_are_the_27_official_names() {
    let unit = |u: Value| with(move |d| directive(d)["Metrics"][0]["Unit"] = u);
    let mut rows: Vec<(String, &[K])> = Unit::ALL
        .iter()
        .map(|u| (unit(json!(u.as_str())), &[][..]))
        .collect();
    for bad in [
        "ms",
        "milliseconds",
        "Nanoseconds",
        "Kibibytes",
        "bytes/second",
        "",
    ] {
        rows.push((unit(json!(bad)), &[K::InvalidUnit]));
    }
    rows.push((unit(json!(5)), &[K::InvalidUnit]));
    rows.push((
        with(|d| directive(d)["Metrics"] = json!([{"Name": "Latency"}])),
        &[],
    ));
    assert_table(&rows);
    let message = &validate(&unit(json!("ms")), NOW)[0].message;
    assert!(message.contains("Milliseconds"), "{message}");
    assert_eq!("Count/Second".parse::<Unit>(), Ok(Unit::CountPerSecond));
    assert!("count".parse::<Unit>().is_err());
}

#[test]
fn hard_case_34_one_unit_per_metric() {
    let doc = with(|d| {
        let first = directive(d).clone();
        let mut second = first.clone();
        second["Namespace"] = json!("other");
        second["Metrics"][0]["Unit"] = json!("Seconds");
        d["_aws"]["CloudWatchMetrics"] = json!([first, second]);
    });
    assert_kinds(&doc, &[K::ConflictingUnit]);
    let mut logger = logger();
    logger
        .put_metric("Latency", 1.0, Unit::Milliseconds)
        .unwrap();
    assert_eq!(
        logger.put_metric("Latency", 1.0, Unit::Seconds),
        Err(EmfError::UnitConflict {
            name: "Latency".into(),
            existing: Unit::Milliseconds,
            new: Unit::Seconds
        })
    );
}

#[test]
fn hard_case_35_storage_resolution_is_1_or_60() {
    let res = |r: Value| with(move |d| directive(d)["Metrics"][0]["StorageResolution"] = r);
    assert_table(&[
        (res(json!(1)), &[]),
        (res(json!(60)), &[]),
        (res(json!(5)), &[K::InvalidStorageResolution]),
        (res(json!("1")), &[K::InvalidStorageResolution]),
        (res(json!(1.0)), &[K::InvalidStorageResolution]),
        (
            with(|d| {
                let first = directive(d).clone();
                let mut second = first.clone();
                second["Namespace"] = json!("other");
                second["Metrics"][0]["StorageResolution"] = json!(1);
                d["_aws"]["CloudWatchMetrics"] = json!([first, second]);
            }),
            &[K::ConflictingStorageResolution],
        ),
    ]);
    let mut logger = logger();
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    assert!(matches!(
        logger.put_metric_with_resolution("M", 1.0, Unit::Count, StorageResolution::High),
        Err(EmfError::ResolutionConflict { .. })
    ));
    assert_eq!(StorageResolution::try_from(30), Err(30));
}

#[test]
fn hard_case_36_default_resolution_is_omitted() {
    let mut logger = logger();
    logger.put_metric("Standard", 1.0, Unit::Count).unwrap();
    logger
        .put_metric_with_resolution("High", 1.0, Unit::Count, StorageResolution::High)
        .unwrap();
    let document = &flush_valid(&mut logger)[0];
    assert!(
        document.contains("{\"Name\":\"Standard\",\"Unit\":\"Count\"}"),
        "{document}"
    );
    assert!(
        document.contains("{\"Name\":\"High\",\"Unit\":\"Count\",\"StorageResolution\":1}"),
        "{document}"
    );
}

#[test]
fn hard_case_37_timestamp_is_integer_milliseconds() {
    let ts = |t: Value| with(move |d| d["_aws"]["Timestamp"] = t);
    assert_table(&[
        (ts(json!(NOW / 1000)), &[K::TimestampTooOld]),
        (ts(json!(NOW * 1000)), &[K::TimestampInFuture]),
        (ts(json!(1.7e12)), &[K::InvalidTimestamp]),
        (ts(json!(NOW as f64 + 0.5)), &[K::InvalidTimestamp]),
        (ts(json!("1700000000000")), &[K::InvalidTimestamp]),
        (
            with(|d| {
                d["_aws"]
                    .as_object_mut()
                    .unwrap()
                    .remove("Timestamp")
                    .map(drop)
                    .unwrap()
            }),
            &[K::MissingTimestamp],
        ),
    ]);
    assert!(
        validate(&ts(json!(NOW / 1000)), NOW)[0]
            .message
            .contains("seconds")
    );
    assert!(
        validate(&ts(json!(NOW * 1000)), NOW)[0]
            .message
            .contains("microseconds")
    );
    assert!(matches!(
        logger().set_timestamp(-1),
        Err(EmfError::InvalidTimestamp { .. })
    ));
}

#[test]
fn hard_case_38_timestamp_window_is_14_days_back_2_hours_ahead() {
    let ts = |t: i64| with(move |d| d["_aws"]["Timestamp"] = json!(t));
    assert_table(&[
        (ts(NOW - MAX_PAST_MS), &[]),
        (ts(NOW - MAX_PAST_MS - 1), &[K::TimestampTooOld]),
        (ts(NOW + MAX_FUTURE_MS), &[]),
        (ts(NOW + MAX_FUTURE_MS + 1), &[K::TimestampInFuture]),
        (ts(-1), &[K::TimestampTooOld]),
    ]);
    let huge = base()
        .to_string()
        .replace(&NOW.to_string(), "99999999999999999999");
    assert_kinds(&huge, &[K::TimestampInFuture]);
}

#[test]
fn hard_case_40_timestamp_is_creation_time_or_explicit_and_survives_flushes() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut logger = MetricsLogger::new("cwpub").unwrap();
    assert!((logger.timestamp_ms() - before).abs() < 60_000);
    logger.set_timestamp(NOW).unwrap();
    logger.put_metric("A", 1.0, Unit::Count).unwrap();
    logger.flush().unwrap();
    logger.put_metric("B", 1.0, Unit::Count).unwrap();
    let document = &logger.flush().unwrap()[0];
    assert_eq!(read_metrics(document).unwrap()[0].timestamp_ms, NOW);
}

#[test]
fn hard_case_41_now_is_supplied_by_the_caller() {
    let doc = base().to_string();
    assert_eq!(validate(&doc, NOW), vec![]);
    assert_eq!(
        validate(&doc, NOW + 15 * 24 * 3_600_000)[0].kind,
        K::TimestampTooOld
    );
    assert_eq!(
        validate(&doc, NOW - 3 * 3_600_000)[0].kind,
        K::TimestampInFuture
    );
}

#[test]
fn hard_case_42_size_is_counted_in_bytes() {
    assert_kinds("", &[K::EmptyMessage]);
    let doc = with(|d| d["note"] = json!("é".repeat(600)));
    assert!(doc.chars().count() < 1_000 && doc.len() > 1_000);
    let options = ValidateOptions {
        max_event_bytes: 1_000,
    };
    assert_eq!(validate_with(&doc, NOW, &options)[0].kind, K::EventTooLarge);
    assert_eq!(ValidateOptions::default().max_event_bytes, 1_048_550);
}

#[test]
fn hard_case_49_split_siblings_share_their_properties() {
    let mut logger = logger();
    logger.put_property("event_id", "job:abc").unwrap();
    for i in 0..150 {
        logger
            .put_metric(&format!("M{i}"), 1.0, Unit::Count)
            .unwrap();
    }
    let documents = flush_valid(&mut logger);
    assert_eq!(documents.len(), 2);
    for document in documents {
        let v: Value = serde_json::from_str(&document).unwrap();
        assert_eq!(v["event_id"], "job:abc");
    }
}

#[test]
fn hard_case_50_empty_flushes_emit_nothing() {
    let mut logger = logger();
    logger.put_property("p", 1).unwrap();
    logger
        .put_dimensions(DimensionSet::from_pairs([("A", "b")]).unwrap())
        .unwrap();
    assert!(logger.flush().unwrap().is_empty());
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    assert_eq!(logger.flush().unwrap().len(), 1);
    assert!(
        logger.flush().unwrap().is_empty(),
        "a flush clears the metrics"
    );
    assert_table(&[
        (
            with(|d| d["_aws"]["CloudWatchMetrics"] = json!([])),
            &[K::NoMetrics],
        ),
        (
            with(|d| directive(d)["Metrics"] = json!([])),
            &[K::NoMetrics],
        ),
        (
            with(|d| directive(d)["Metrics"] = json!({})),
            &[K::InvalidMetrics],
        ),
        (
            with(|d| d["_aws"]["CloudWatchMetrics"] = json!({})),
            &[K::InvalidCloudWatchMetrics],
        ),
        (
            with(|d| d["_aws"]["CloudWatchMetrics"] = json!([1])),
            &[K::InvalidDirective],
        ),
        (with(|d| d["_aws"] = json!([])), &[K::InvalidAws]),
    ]);
}

#[test]
fn hard_case_51_number_formatting_is_deterministic() {
    let mut logger = logger();
    logger.put_metric("Zero", -0.0, Unit::Count).unwrap();
    logger.put_metric("One", 1.0, Unit::Count).unwrap();
    logger.put_metric("Tenth", 0.1, Unit::Count).unwrap();
    logger.put_metric("Small", 1.5e-7, Unit::Count).unwrap();
    let document = &flush_valid(&mut logger)[0];
    assert!(
        document.ends_with(",\"Zero\":0,\"One\":1,\"Tenth\":0.1,\"Small\":1.5e-7}"),
        "{document}"
    );
}

#[test]
fn hard_case_52_strings_are_escaped() {
    let mut logger = logger();
    logger
        .put_property("note", "line1\nline2\u{0}\"quoted\" \\ ✓")
        .unwrap();
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    let document = &flush_valid(&mut logger)[0];
    assert!(!document.contains('\n'));
    let v: Value = serde_json::from_str(document).unwrap();
    assert_eq!(v["note"], "line1\nline2\u{0}\"quoted\" \\ ✓");
    let doc = base().to_string();
    assert_table(&[
        (
            doc.replace("\"orders\"", "\"or\\ud800ders\""),
            &[K::InvalidJson],
        ),
        (
            doc.replace("\"orders\"", "\"or\\u0000ders\""),
            &[K::InvalidDimensionValue],
        ),
        (
            doc.replace("\"orders\"", "\"or\\u00e9ders\""),
            &[K::InvalidDimensionValue],
        ),
    ]);
}

#[test]
fn hard_case_53_prefixes_pretty_printing_and_wrappers_break_extraction() {
    let doc = base().to_string();
    let pretty = serde_json::to_string_pretty(&base()).unwrap();
    assert_table(&[
        (
            format!("2023-11-14T22:13:20.000Z\tabc-123\tINFO\t{doc}"),
            &[K::InvalidJson],
        ),
        (pretty, &[K::MultilineDocument]),
        (json!({ "message": doc }).to_string(), &[K::MissingAws]),
    ]);
}
