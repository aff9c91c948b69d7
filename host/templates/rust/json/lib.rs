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
