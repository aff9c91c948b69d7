//! What the integration tests share: a strict fake CloudWatch Logs endpoint,
//! a private moto server, storms and outages in front of either, a driver
//! of the real `cwpub` binary, a runner for its one-shot commands, the pinned
//! componentize-py, the builder of the test-only guests, `cargo install` of
//! this checkout, and for the container tests the image and podman helpers,
//! a fake ECS credentials endpoint and a proxy that records who signed each
//! AWS request.

pub mod chaos;
pub mod cli;
pub mod componentize;
pub mod container;
pub mod cw;
pub mod daemon;
pub mod fake_credentials;
pub mod fake_cwl;
pub mod fake_datadog;
pub mod fake_sink;
pub mod faulty_fs;
pub mod install;
pub mod moto;
pub mod recording_proxy;
pub mod test_guests;
