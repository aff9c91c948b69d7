"""Checks deployment manifests offline with real schemas, for tests/deploy_manifests.rs.

    validate_manifests.py k8s FILE OUT.json   Kubernetes objects against the schemas bundled
                                              in kubernetes-validate, strict (unknown fields are
                                              errors), for every supported Kubernetes version
    validate_manifests.py ecs FILE OUT.json   an ECS task definition against botocore's
                                              RegisterTaskDefinition input shape

Prints one line per problem and exits 1 if there is any; on success writes the
parsed documents to OUT.json (a list) so the Rust test can check policy on them.
A missing checker is an error (exit 2), never a pass.
"""

import json
import sys

# The Kubernetes versions the manifests must be valid for: the oldest and the
# newest that EKS supports in standard or extended support, as bundled schemas.
K8S_VERSIONS = ["1.29", "1.33", "1.37"]


def k8s(path):
    try:
        import yaml
        import kubernetes_validate
        from kubernetes_validate.utils import ValidationError
    except ImportError as e:
        print(f"kubernetes-validate is not installed ({e}); run ./scripts/test.sh", file=sys.stderr)
        sys.exit(2)
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    problems = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                problems.append(f"{path}: {name} (Kubernetes {version}): {where}: {e.message}")
            except Exception as e:  # unknown kind/apiVersion, unsupported version
                problems.append(f"{path}: {name} (Kubernetes {version}): {e}")
    return docs, problems


def ecs(path):
    try:
        import botocore.session
        from botocore.exceptions import ParamValidationError
        from botocore.validate import validate_parameters
    except ImportError as e:
        print(f"botocore is not installed ({e}); run ./scripts/test.sh", file=sys.stderr)
        sys.exit(2)
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    problems = []
    try:
        validate_parameters(doc, shape)
    except ParamValidationError as e:
        for line in str(e).splitlines()[1:] or [str(e)]:
            problems.append(f"{path}: {line.strip()}")
    return [doc], problems


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("k8s", "ecs"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    kind, path, out = sys.argv[1:]
    docs, problems = (k8s if kind == "k8s" else ecs)(path)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(docs, f)


if __name__ == "__main__":
    main()
