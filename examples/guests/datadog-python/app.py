"""A cwpub guest in Python: one DataDog-style JSON log event per run.

It shows the payload swap cwpub promises: the host keeps scheduling,
batching and delivery; this guest only decides what a log line looks like
-- here the attributes DataDog's log intake reserves (ddsource, ddtags,
hostname, service, status, message, timestamp). Sent to a DataDog sink,
they arrive as DataDog's own attributes; sent to CloudWatch, the stream
can be forwarded to DataDog unchanged.

Job config (every value is a string):
  service   required   DataDog `service`
  source    optional   DataDog `ddsource` (default "cwpub")
  message   optional   the log message (default "heartbeat")
  status    optional   DataDog status (default "info"; "warn" whenever the
                       host has dropped events)
  tag.NAME  optional   one `NAME:value` entry of `ddtags`, in config order

Build and test (from this directory, componentize-py 0.25.1 installed):
  componentize-py -d ../../../wit -w guest componentize app -o datadog.wasm
  cwpub test
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import diagnostics, types

STATUSES = ("debug", "info", "notice", "warn", "error", "critical", "alert", "emergency", "ok")
KEYS = ("service", "source", "message", "status")


def settings(config):
    """The job config as a dict, checked; raises invalid-config naming the key and the fix."""
    values = {}
    tags = []
    for key, value in config:
        if key.startswith("tag.") and len(key) > 4:
            tags.append(f"{key[4:]}:{value}")
        elif key in KEYS:
            values[key] = value
        else:
            raise Err(types.GuestError_InvalidConfig(
                f"config key `{key}`: unknown key; this guest accepts "
                "`service`, `source`, `message`, `status` and `tag.<name>`"))
    if not values.get("service"):
        raise Err(types.GuestError_InvalidConfig(
            "config key `service` is required, e.g. service = \"orders-api\""))
    status = values.get("status", "info")
    if status not in STATUSES:
        raise Err(types.GuestError_InvalidConfig(
            f"config key `status`: {status!r} is not a DataDog status; use one of {', '.join(STATUSES)}"))
    values["status"] = status
    values["tags"] = tags
    return values


class Publisher(exports.Publisher):
    def validate_config(self, job_name, config):
        settings(config)

    def run(self, ctx):
        s = settings(ctx.config)
        facts = ctx.facts
        tags = [f"job:{ctx.job_name}", *s["tags"]]
        if facts.region:
            tags.append(f"region:{facts.region}")
        dropped = facts.delivery.events_dropped
        status = "warn" if dropped else s["status"]
        event = {
            "ddsource": s.get("source", "cwpub"),
            "ddtags": ",".join(tags),
            "hostname": facts.hostname,
            "service": s["service"],
            "status": status,
            "message": s.get("message", "heartbeat"),
            "timestamp": ctx.actual_ms,
            "cwpub": {
                "sequence": ctx.sequence,
                "invocation_id": ctx.invocation_id,
                "scheduled_ms": ctx.scheduled_ms,
                "host_version": facts.host_version,
                "task_id": facts.task_id,
                "events_dropped": dropped,
            },
        }
        diagnostics.log(types.Level.DEBUG, f"composed DataDog event {ctx.sequence} for {s['service']}")
        line = json.dumps(event, separators=(",", ":"))
        return types.Output(
            kind=types.PayloadKind.JSON_LOG,
            events=[types.LogEvent(timestamp_ms=ctx.actual_ms, message=line)],
        )
