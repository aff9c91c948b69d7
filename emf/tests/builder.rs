//! MetricsLogger dimension semantics: defaults, `set_dimensions`,
//! `put_dimensions`, `reset_dimensions`, and what a flush keeps.

mod common;

use common::{NOW, assert_kinds};
use cwpub_emf::{DimensionSet, MetricsLogger, Unit, read_metrics};

fn set(pairs: &[(&str, &str)]) -> DimensionSet {
    DimensionSet::from_pairs(pairs.iter().copied()).unwrap()
}

/// The declared dimension sets of the next flush, as name lists.
fn declared(logger: &mut MetricsLogger) -> Vec<Vec<String>> {
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    let documents = logger.flush().unwrap();
    assert_eq!(documents.len(), 1);
    assert_kinds(&documents[0], &[]);
    read_metrics(&documents[0]).unwrap()[0]
        .dimensions
        .iter()
        .map(|s| s.iter().map(|(k, _)| k.clone()).collect())
        .collect()
}

fn logger_with_defaults() -> MetricsLogger {
    let mut logger = MetricsLogger::new("cwpub").unwrap();
    logger.set_timestamp(NOW).unwrap();
    logger
        .set_default_dimensions(set(&[("Service", "svc")]))
        .unwrap();
    logger
}

#[test]
fn defaults_alone_are_used_without_custom_sets() {
    let mut logger = logger_with_defaults();
    assert_eq!(declared(&mut logger), vec![vec!["Service"]]);
}

#[test]
fn defaults_are_prepended_to_put_dimensions() {
    let mut logger = logger_with_defaults();
    logger.put_dimensions(set(&[("Op", "get")])).unwrap();
    logger
        .put_dimensions(set(&[("Op", "get"), ("Table", "t")]))
        .unwrap();
    assert_eq!(
        declared(&mut logger),
        vec![vec!["Service", "Op"], vec!["Service", "Op", "Table"]]
    );
}

#[test]
fn set_dimensions_replaces_custom_sets_and_chooses_defaults() {
    let mut logger = logger_with_defaults();
    logger.put_dimensions(set(&[("Op", "get")])).unwrap();
    logger
        .set_dimensions([set(&[("Table", "t")])], false)
        .unwrap();
    assert_eq!(declared(&mut logger), vec![vec!["Table"]]);
    // put_dimensions keeps the choice made by set_dimensions.
    logger.put_dimensions(set(&[("Op", "get")])).unwrap();
    assert_eq!(declared(&mut logger), vec![vec!["Table"], vec!["Op"]]);
    logger
        .set_dimensions([set(&[("Table", "t")])], true)
        .unwrap();
    assert_eq!(declared(&mut logger), vec![vec!["Service", "Table"]]);
}

#[test]
fn reset_dimensions_with_and_without_defaults() {
    let mut logger = logger_with_defaults();
    logger.put_dimensions(set(&[("Op", "get")])).unwrap();
    logger.reset_dimensions(false);
    assert_eq!(declared(&mut logger), vec![Vec::<String>::new()]);
    logger.reset_dimensions(true);
    assert_eq!(declared(&mut logger), vec![vec!["Service"]]);
}

#[test]
fn flush_keeps_dimensions_properties_namespace_and_timestamp() {
    let mut logger = logger_with_defaults();
    logger.set_namespace("other/ns").unwrap();
    logger.put_property("event_id", "e").unwrap();
    logger.put_dimensions(set(&[("Op", "get")])).unwrap();
    logger.put_metric("A", 1.0, Unit::Count).unwrap();
    let first = logger.flush().unwrap().remove(0);
    logger.put_metric("A", 2.0, Unit::Count).unwrap();
    let second = logger.flush().unwrap().remove(0);
    assert_eq!(first.replace("\"A\":1", "\"A\":2"), second);
    assert!(second.contains("\"Namespace\":\"other/ns\"") && second.contains("\"event_id\":\"e\""));
}

#[test]
fn properties_are_replaced_not_duplicated() {
    let mut logger = logger_with_defaults();
    logger.put_property("p", 1).unwrap();
    logger.put_property("p", "two").unwrap();
    logger.put_metric("M", 1.0, Unit::Count).unwrap();
    let document = logger.flush().unwrap().remove(0);
    assert_eq!(document.matches("\"p\":").count(), 1);
    assert!(document.contains("\"p\":\"two\""));
}

#[test]
fn errors_name_the_offending_key() {
    let mut logger = logger_with_defaults();
    let message = logger
        .put_metric("Lat", f64::NAN, Unit::Milliseconds)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"Lat\"") && message.contains("not finite"),
        "{message}"
    );
    logger.put_metric("Lat", 1.0, Unit::Milliseconds).unwrap();
    let message = logger
        .put_metric("Lat", 1.0, Unit::Seconds)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"Lat\"")
            && message.contains("Milliseconds")
            && message.contains("Seconds"),
        "{message}"
    );
    let message = logger.put_property("Service", "x").unwrap_err().to_string();
    assert!(
        message.contains("\"Service\"") && message.contains("dimension"),
        "{message}"
    );
}
