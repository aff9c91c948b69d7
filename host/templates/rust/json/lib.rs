//! {{project-name}}: a cwpub guest that publishes one JSON log line per run.
//!
//! The host calls `validate_config` once when it loads the job and `run` on
//! every tick, each in a fresh sandboxed instance. README.md says how to
//! build, test and run it; the SDK's documentation (`cargo doc --open`) is the
//! manual.

use cwpub_guest::serde_json::{Value, json};
use cwpub_guest::{Config, Context, Guest, Output, Result};

struct {{project-name | upper_camel_case}};

impl Guest for {{project-name | upper_camel_case}} {
    const NAME: &'static str = "{{project-name}}";
    /// Any other key in the job's config is refused with a clear message.
    const CONFIG_KEYS: &'static [&'static str] = &["greeting"];

    fn validate_config(config: &Config) -> Result<()> {
        Settings::read(config).map(drop)
    }

    fn run(ctx: &Context) -> Result<Output> {
        let settings = Settings::read(&ctx.config)?;
        cwpub_guest::debug!("run {} of job {}", ctx.sequence, ctx.job);
        Output::json_lines(ctx.actual, [compose(ctx, &settings)])
    }
}

cwpub_guest::export!({{project-name | upper_camel_case}});

/// The event published on every run. Edit me, then update cwpub-test.toml.
fn compose(ctx: &Context, settings: &Settings) -> Value {
    json!({
        "message": format!("{}, world!", settings.greeting),
        "job": ctx.job,
        "sequence": ctx.sequence,
        "host": ctx.host.hostname,
        "time": ctx.actual.to_string(),
    })
}

/// The job's configuration, read in one place for the check and the run.
struct Settings<'a> {
    greeting: &'a str,
}

impl<'a> Settings<'a> {
    fn read(config: &'a Config) -> Result<Self> {
        Ok(Settings {
            greeting: config.optional("greeting")?.unwrap_or("Hello"),
        })
    }
}

/// Unit tests run the guest natively (`cargo test`) with a context you build.
#[cfg(test)]
mod tests {
    use super::{{project-name | upper_camel_case}} as TheGuest;
    use super::*;

    #[test]
    fn the_greeting_comes_from_the_config() {
        let mut ctx = Context::new("hello", "2026-01-01T00:00:00Z".parse().unwrap());
        ctx.config = Config::new("hello", [("greeting", "Hi")]);
        let output = ctx.run_for::<TheGuest>().unwrap();
        let message = &output.events[0].message;
        let event: Value = cwpub_guest::serde_json::from_str(message).unwrap();
        let text = event["message"].as_str().unwrap();
        assert!(text.starts_with("Hi"), "{event}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let config = Config::new("hello", [("colour", "red")]);
        let e = config.validate_for::<TheGuest>().unwrap_err();
        assert!(e.message().contains("unknown key"), "{e}");
    }
}
