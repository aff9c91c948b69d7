"""The job's configuration, checked the way every cwpub guest checks it.

`read_config` refuses repeated, unknown and empty keys with an `invalid-config`
error naming the key and the fix; `invalid` raises such an error for your own
checks, so every message has the same shape: config key `colour`: unknown key.
"""

from componentize_py_types import Err
from wit_world.imports import types


def read_config(config: list[tuple[str, str]], guest: str, defaults: dict[str, str], keys: list[str]) -> dict[str, str]:
    """`defaults` overridden by the job's `config`, whose keys must be among `keys`."""
    settings = dict(defaults)
    seen = set()
    for key, value in config:
        if key in seen:
            invalid(key, "appears more than once; keep one")
        seen.add(key)
        if key not in keys:
            invalid(key, f"unknown key; {guest} accepts {listing(keys)}")
        if not value:
            invalid(key, "must not be empty")
        settings[key] = value
    return settings


def invalid(key: str, why: str):
    """Fails with the `invalid-config` error the host reports for this job."""
    raise Err(types.GuestError_InvalidConfig(f"config key `{key}`: {why}"))


def listing(keys: list[str]) -> str:
    """`a`, `b` and `c`"""
    quoted = [f"`{k}`" for k in keys]
    return " and ".join(filter(None, [", ".join(quoted[:-1]), quoted[-1]]))
