//! What the integration tests share: a strict fake CloudWatch Logs endpoint,
//! a private moto server, the builder of the test-only guests, and a runner
//! for the real `cwpub` binary.

pub mod cli;
pub mod fake_cwl;
pub mod moto;
pub mod test_guests;
