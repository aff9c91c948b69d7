//! The integration tests, compiled into one binary so wasmtime and the AWS SDK
//! are linked once. Every `*.rs` file beside this one is a test module and is
//! picked up automatically: adding a file here is enough for it to run.
//! Shared fakes and builders live in `support/`, test-only guests in `guests/`.

mod support;

automod::dir!("../tests");
