//! What the integration tests share: a strict fake CloudWatch Logs endpoint,
//! a private moto server, and the builder of the test-only guests.

pub mod fake_cwl;
pub mod moto;
pub mod test_guests;
