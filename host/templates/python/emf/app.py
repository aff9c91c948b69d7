"""{{project-name}}: a cwpub guest that publishes CloudWatch metrics as one
Embedded Metric Format (EMF) document per run.

The host calls `Publisher.validate_config` once when it loads the job and
`Publisher.run` on every tick, each in a fresh sandboxed instance. The host
checks every document against the EMF specification and drops (and counts)
invalid ones; `cwpub test` applies the same check. README.md says how to
build, test and run it; wit/publisher.wit is the contract.
"""

import json
import re

from wit_world import exports
from wit_world.imports import diagnostics, types

from jobconfig import invalid, read_config

NAME = "{{project-name}}"
# Any other key in the job's config is refused with a clear message.
CONFIG_KEYS = ["namespace", "service"]


class Publisher(exports.Publisher):
    def validate_config(self, job_name: str, config: list[tuple[str, str]]) -> None:
        read_settings(config)

    def run(self, ctx: types.RunContext) -> types.Output:
        settings = read_settings(ctx.config)
        diagnostics.log(types.Level.DEBUG, f"run {ctx.sequence} of job {ctx.job_name}")
        document = json.dumps(compose(ctx, settings), separators=(",", ":"))
        # The event's time must equal the document's _aws.Timestamp.
        event = types.LogEvent(timestamp_ms=ctx.actual_ms, message=document)
        return types.Output(kind=types.PayloadKind.EMF, events=[event])


def compose(ctx: types.RunContext, settings: dict[str, str]) -> dict:
    """The document published on every run. Edit me, then update cwpub-test.toml.

    Every dimension and metric named under _aws must be a key of the document;
    units are CloudWatch's (Count, Seconds, Bytes, Milliseconds, Percent, ...).
    """
    return {
        "_aws": {
            "Timestamp": ctx.actual_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": settings["namespace"],
                    "Dimensions": [["Service"]],
                    "Metrics": [
                        {"Name": "Heartbeat", "Unit": "Count"},
                        {"Name": "UptimeSeconds", "Unit": "Seconds"},
                        {"Name": "EventsDropped", "Unit": "Count"},
                    ],
                }
            ],
        },
        "Service": settings.get("service", ctx.job_name),
        "host": ctx.facts.hostname,
        "Heartbeat": 1,
        "UptimeSeconds": ctx.facts.uptime_ms / 1000,
        "EventsDropped": ctx.facts.delivery.events_dropped,
    }


# CloudWatch's rules for a namespace and a dimension value.
NAMESPACE = re.compile(r"[0-9A-Za-z._/#: -]{1,255}")
DIMENSION_VALUE = re.compile(r"[\x20-\x7e]{1,1024}")


def read_settings(config: list[tuple[str, str]]) -> dict[str, str]:
    """The job's configuration with defaults; every error names the key and the fix."""
    settings = read_config(config, NAME, {"namespace": NAME}, CONFIG_KEYS)
    namespace = settings["namespace"]
    if not NAMESPACE.fullmatch(namespace) or namespace.isspace() or namespace.startswith((":", "AWS/")):
        invalid("namespace", f"{namespace!r} is not a CloudWatch namespace; use 1-255 of A-Z a-z 0-9 . _ - / # : and space, not starting with : or AWS/")
    service = settings.get("service")
    if service is not None and (not DIMENSION_VALUE.fullmatch(service) or service.isspace()):
        invalid("service", f"{service!r} is not a dimension value; use 1-1024 printable ASCII characters")
    return settings
