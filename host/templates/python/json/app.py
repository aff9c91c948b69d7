"""{{project-name}}: a cwpub guest that publishes one JSON log line per run.

The host calls `Publisher.validate_config` once when it loads the job and
`Publisher.run` on every tick, each in a fresh sandboxed instance. README.md
says how to build, test and run it; wit/publisher.wit is the contract.
"""

import json
from datetime import datetime, timezone

from wit_world import exports
from wit_world.imports import diagnostics, types

from jobconfig import read_config

NAME = "{{project-name}}"
# Any other key in the job's config is refused with a clear message.
CONFIG_KEYS = ["greeting"]


class Publisher(exports.Publisher):
    def validate_config(self, job_name: str, config: list[tuple[str, str]]) -> None:
        read_settings(config)

    def run(self, ctx: types.RunContext) -> types.Output:
        settings = read_settings(ctx.config)
        diagnostics.log(types.Level.DEBUG, f"run {ctx.sequence} of job {ctx.job_name}")
        line = json.dumps(compose(ctx, settings), separators=(",", ":"), ensure_ascii=False)
        event = types.LogEvent(timestamp_ms=ctx.actual_ms, message=line)
        return types.Output(kind=types.PayloadKind.JSON_LOG, events=[event])


def compose(ctx: types.RunContext, settings: dict[str, str]) -> dict:
    """The event published on every run. Edit me, then update cwpub-test.toml."""
    return {
        "message": f"{settings['greeting']}, world!",
        "job": ctx.job_name,
        "sequence": ctx.sequence,
        "host": ctx.facts.hostname,
        "time": iso8601(ctx.actual_ms),
    }


def read_settings(config: list[tuple[str, str]]) -> dict[str, str]:
    """The job's configuration with defaults; every error names the key and the fix."""
    return read_config(config, NAME, {"greeting": "Hello"}, CONFIG_KEYS)


def iso8601(ms: int) -> str:
    """Milliseconds since the Unix epoch as UTC, e.g. 2026-01-01T00:00:00.000Z."""
    t = datetime.fromtimestamp(ms // 1000, tz=timezone.utc).replace(microsecond=ms % 1000 * 1000)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
