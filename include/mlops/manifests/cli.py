"""``python -m mlops.manifests``: render the model service's manifests, validate them, write them.

The settings come from an env file (``KEY=VALUE`` lines, ``#`` comments) when one is given,
and from nothing else, so the same file renders the same manifests on any machine; without
one, from the environment. The manifests are validated offline before they are written
(atomically, one multi-document YAML file).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops.manifests.kubernetes import (
    KUBERNETES_VERSION,
    ClusterTarget,
    ManifestError,
    manifests_yaml,
    secret_keys,
    service_manifests,
    validate_manifests,
    workload_env,
)
from mlops.serving.config import load_serving_config
from mlops.settings import ConfigError, load_settings

MANIFEST_FILE = "model-service.yaml"
HEADER = "# Rendered by `make k8s-manifests` (python -m mlops.manifests); edit {source}, not this file.\n"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped, one pair of quotes dropped."""
    env = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.manifests", description=__doc__)
    parser.add_argument("--env-file", type=Path, help="settings (MLOPS_*) of the cluster")
    parser.add_argument("--image", required=True, help="the project image (Dockerfile)")
    parser.add_argument("--namespace", default="mlops")
    parser.add_argument("--secret", default="mlops-fraud", help="Secret with the credentials")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from mlops.io.storage import write_bytes_atomic

    args = parse_args(argv)
    try:
        env = read_env_file(args.env_file) if args.env_file else dict(os.environ)
        settings = load_settings(env)
        target = ClusterTarget(args.image, namespace=args.namespace, secret_name=args.secret)
        docs = service_manifests(settings, load_serving_config(env), target, replicas=args.replicas)
        validate_manifests(docs, args.kubernetes_version)
    except (ConfigError, ManifestError, OSError) as err:
        print(f"python -m mlops.manifests: error: {err}", file=sys.stderr)
        return 2
    source = args.env_file or "the MLOPS_* environment"
    path = args.out / MANIFEST_FILE
    write_bytes_atomic(str(path), (HEADER.format(source=source) + manifests_yaml(docs)).encode())
    keys = ", ".join(secret_keys(workload_env(settings)))
    print(f"wrote {path} ({len(docs)} objects, valid for Kubernetes {args.kubernetes_version})")
    print(f"Secret {target.namespace}/{target.secret_name} must hold: {keys}")
    return 0
