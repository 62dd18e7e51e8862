"""``python -m mlops.manifests``: render the model service's manifests, validate them, write them.

The service's environment is the compose file's ``model-service`` block, read with every
.env variable unset (so a ``${POSTGRES_PASSWORD:-airflow}`` default never reaches a
manifest: whatever compose takes from .env, and every URL with a password, is a key of the
Secret instead). Nothing comes from the shell, so the same compose file renders the same
manifests on any machine. What differs on a cluster is an argument: the image, the
namespace, the Secret, the replicas; the service names are the same DNS names in the
namespace. The manifests are validated offline before they are written (atomically, one
multi-document YAML file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops.manifests.environment import (
    COMPOSE_FILE,
    MODEL_SERVICE,
    interpolated_names,
    service_environment,
)
from mlops.manifests.kubernetes import (
    KUBERNETES_VERSION,
    SECRET_KEYS_ANNOTATION,
    ClusterTarget,
    ManifestError,
    manifests_yaml,
    service_manifests,
    validate_manifests,
)
from mlops.settings import ConfigError

MANIFEST_FILE = "model-service.yaml"
SERVICE_SECRET = "mlops-model-service"  # not the training pods' Secret: no object-store key
HEADER = (
    "# Rendered by `make k8s-manifests` (python -m mlops.manifests) from the model-service\n"
    "# environment of {source}; edit that, not this file.\n"
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.manifests", description=__doc__)
    parser.add_argument(
        "--compose-file", type=Path, help="the compose file (default: the project's)"
    )
    parser.add_argument(
        "--image", required=True, help="the project image, by digest or version tag (not latest)"
    )
    parser.add_argument("--namespace", default="mlops")
    parser.add_argument("--secret", default=SERVICE_SECRET, help="Secret with the credentials")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--ingress-namespace", default="ingress-nginx", help="the ingress controller's namespace"
    )
    parser.add_argument(
        "--ingress-controller",
        default="ingress-nginx",
        help="the controller pods' app.kubernetes.io/name (only they reach the service)",
    )
    parser.add_argument(
        "--prometheus-namespace", help="let this namespace scrape the service too (default: none)"
    )
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from mlops.io.storage import write_bytes_atomic

    args = parse_args(argv)
    compose = args.compose_file or COMPOSE_FILE
    try:
        env = service_environment(MODEL_SERVICE, {}, compose)
        target = ClusterTarget(
            args.image,
            namespace=args.namespace,
            secret_name=args.secret,
            ingress_namespace=args.ingress_namespace,
            ingress_controller=args.ingress_controller,
            prometheus_namespace=args.prometheus_namespace,
        )
        docs = service_manifests(
            env, target, secret=interpolated_names(MODEL_SERVICE, compose), replicas=args.replicas
        )
        validate_manifests(docs, args.kubernetes_version)
    except (ConfigError, ManifestError, OSError, KeyError) as err:
        print(f"python -m mlops.manifests: error: {err}", file=sys.stderr)
        return 2
    source = args.compose_file or COMPOSE_FILE.name
    path = args.out / MANIFEST_FILE
    write_bytes_atomic(str(path), (HEADER.format(source=source) + manifests_yaml(docs)).encode())
    keys = docs[0]["metadata"]["annotations"][SECRET_KEYS_ANNOTATION].replace(",", ", ")
    print(f"wrote {path} ({len(docs)} objects, valid for Kubernetes {args.kubernetes_version})")
    print(f"Secret {target.namespace}/{target.secret_name} must hold: {keys}")
    return 0
