//! What the integration tests share: a strict fake CloudWatch Logs endpoint,
//! a private moto server, storms and outages in front of either, a driver
//! of the real `cwpub` binary, a runner for its one-shot commands, and the
//! builder of the test-only guests.

pub mod chaos;
pub mod cli;
pub mod daemon;
pub mod fake_cwl;
pub mod moto;
pub mod test_guests;
