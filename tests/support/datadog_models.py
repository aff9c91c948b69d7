"""Checks what the fake DataDog intake received against DataDog's own API models,
for tests/support/fake_datadog.rs.

    datadog_models.py RECEIVED.json

RECEIVED.json is {"logs": [REQUEST, ...], "series": [PAYLOAD, ...]}: each logs
REQUEST is the JSON array of one POST /api/v2/logs, each series PAYLOAD the JSON
object of one POST /api/v2/series. Every log item is built as an `HTTPLogItem`
(inside an `HTTPLog`), every payload as a `MetricPayload` of `MetricSeries`,
`MetricPoint`, `MetricIntakeType` and `MetricResource`, with the models' type
checks on. A series member the model does not declare is a problem too (the
models would keep it as an "additional property"; the intake has no use for
it); log items may carry any attribute, as the intake documents. Each model is
also turned back into a dict and compared with the input, so a value the model
had to coerce is reported.

Prints one line per problem and exits 1 if there is any, 0 otherwise. A missing
datadog-api-client is an error (exit 2), never a pass.
"""

import json
import sys


def main(path):
    try:
        from datadog_api_client.v2.model.http_log import HTTPLog
        from datadog_api_client.v2.model.http_log_item import HTTPLogItem
        from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
        from datadog_api_client.v2.model.metric_payload import MetricPayload
        from datadog_api_client.v2.model.metric_point import MetricPoint
        from datadog_api_client.v2.model.metric_resource import MetricResource
        from datadog_api_client.v2.model.metric_series import MetricSeries
    except ImportError as e:
        print(
            f"datadog-api-client is not installed ({e}); "
            "pip install 'datadog-api-client>=2,<3' into the Python CWPUB_DD_PYTHON names",
            file=sys.stderr,
        )
        sys.exit(2)

    with open(path, encoding="utf-8") as f:
        received = json.load(f)
    problems = []

    for r, request in enumerate(received.get("logs", [])):
        where = f"logs request {r}"
        if not isinstance(request, list):
            problems.append(f"{where}: the body is not a JSON array")
            continue
        items = []
        for i, item in enumerate(request):
            try:
                if not isinstance(item, dict):
                    raise TypeError(f"the item is {type(item).__name__}, not an object")
                model = HTTPLogItem(**item)
                items.append(model)
                back = model.to_dict()
                if back != item:
                    raise ValueError(f"the model changed the item: {back!r}")
            except Exception as e:  # the models raise several exception types
                problems.append(f"{where} item {i}: {type(e).__name__}: {e}")
        try:
            HTTPLog(items)
        except Exception as e:
            problems.append(f"{where}: HTTPLog: {type(e).__name__}: {e}")

    declared = set(MetricSeries.attribute_map)
    for p, payload in enumerate(received.get("series", [])):
        where = f"series payload {p}"
        try:
            if not isinstance(payload, dict) or set(payload) != {"series"}:
                raise ValueError("the payload must be an object with the member `series` only")
            series = []
            for s, entry in enumerate(payload["series"]):
                unknown = set(entry) - declared
                if unknown:
                    raise ValueError(f"series {s} has members MetricSeries does not declare: {sorted(unknown)}")
                kwargs = {k: v for k, v in entry.items() if k not in ("points", "type", "resources")}
                kwargs["points"] = [
                    MetricPoint(**point) if isinstance(point, dict) else point for point in entry.get("points", [])
                ]
                if "type" in entry:
                    kwargs["type"] = MetricIntakeType(entry["type"])
                    # The constructor does not check the enumeration itself.
                    if kwargs["type"].value not in MetricIntakeType.allowed_values:
                        raise ValueError(f"series {s} has type {entry['type']!r}, not one of {sorted(MetricIntakeType.allowed_values)}")
                if "resources" in entry:
                    kwargs["resources"] = [
                        MetricResource(**r) if isinstance(r, dict) else r for r in entry["resources"]
                    ]
                series.append(MetricSeries(**kwargs))
            model = MetricPayload(series=series)
            back = model.to_dict()
            if back != payload:
                raise ValueError(f"the model changed the payload: {json.dumps(back)[:500]}")
        except Exception as e:
            problems.append(f"{where}: {type(e).__name__}: {e}")

    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
