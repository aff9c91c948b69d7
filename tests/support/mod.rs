//! What the integration tests share: a strict fake CloudWatch Logs endpoint,
//! a private moto server, the builder of the test-only guests, and for the
//! container tests the image and podman helpers, a fake ECS credentials
//! endpoint and a proxy that records who signed each AWS request.

pub mod container;
pub mod fake_credentials;
pub mod fake_cwl;
pub mod moto;
pub mod recording_proxy;
pub mod test_guests;
