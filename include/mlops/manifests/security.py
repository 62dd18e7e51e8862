"""What the project's pods may do on a cluster, and the offline checks that hold them to it.

- Pod Security "restricted" (the Kubernetes Pod Security Standards, v1.33): non-root,
  no privilege escalation, every capability dropped, the runtime's default seccomp profile,
  only ordinary volume types. ``restricted_violations`` checks a rendered pod or pod
  template against that profile, so a manifest that a ``restricted`` namespace would refuse
  is refused before it is written (``validate_manifests``).
- The model service's root filesystem is read-only; it writes only temporary files (MLflow
  downloads a model's artifacts into a temporary folder, Feast keeps metrics files there),
  so ``/tmp`` is an ``emptyDir``. Checked with strace on a start, a champion load and a
  ``/predict``: no other write but to its data stores (remote in production).
- Secrets come one key at a time (``secret_env``): a pod sees the Secret's keys it uses, not
  the whole Secret (``envFrom`` would hand it every key, present and future).
- The image is pinned (``image_pin_problem``): a digest, or a tag naming a version.
- NetworkPolicies (``service_network_policies``): only the ingress controller reaches the
  service's port (and Prometheus when named); the service itself reaches DNS and the ports
  of the URLs in its environment (registry, online store, prediction log), nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

RUN_AS_USER = 50000  # the official Airflow image's `airflow` user
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
# The volume types the restricted profile allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_SCHEME_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgresql": 5432}


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": 0,  # the image's files belong to group 0 (Airflow's convention)
        "fsGroup": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, read_only_root: bool) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secret_env(keys: Collection[str], secret_name: str) -> list[dict[str, Any]]:
    """One ``env`` entry a key of the Secret: the pod sees only these keys."""
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
        for key in sorted(keys)
    ]


def image_pin_problem(image: str) -> str | None:
    """Why ``image`` is not pinned, or None: a digest (``@sha256:...``) or a tag naming a
    version (a digit in it: ``1.2.3``, ``v7``, a commit) are; ``latest``, ``local``, no tag
    are names that move."""
    if _DIGEST.search(image):
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a colon of a registry port is not one)
        return f"image {image!r} has no tag: pin a digest (@sha256:...) or a version tag"
    if tag == "latest" or not re.search(r"\d", tag):
        return f"image {image!r} has the moving tag {tag!r}: pin a digest or a version tag"
    return None


def _pod_spec(doc: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    if doc.get("kind") == "Pod":
        return "spec", doc.get("spec") or {}
    template = (doc.get("spec") or {}).get("template")
    return None if template is None else ("spec.template.spec", template.get("spec") or {})


def restricted_violations(doc: Mapping[str, Any]) -> list[str]:
    """Where a pod (or a workload's pod template) breaks Pod Security "restricted", each with
    the path of the field; empty for objects without pods."""
    found = _pod_spec(doc)
    if found is None:
        return []
    where, spec = found
    pod = spec.get("securityContext") or {}
    problems = [
        f"{where}.{flag}: must not be true"
        for flag in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(flag)
    ]
    for i, volume in enumerate(spec.get("volumes") or []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"{where}.volumes[{i}]: {sorted(kinds)} volumes are not allowed")
    if pod.get("runAsUser") == 0:
        problems.append(f"{where}.securityContext.runAsUser: must not be 0")
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            problems += _container_violations(f"{where}.{group}[{i}]", container, pod)
    return problems


def _container_violations(
    where: str, container: Mapping[str, Any], pod: Mapping[str, Any]
) -> list[str]:
    context = container.get("securityContext") or {}
    problems = []
    if context.get("privileged"):
        problems.append(f"{where}.securityContext.privileged: must not be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
    if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
        problems.append(f"{where}.securityContext.runAsNonRoot: must be true (or the pod's)")
    if context.get("runAsUser") == 0:
        problems.append(f"{where}.securityContext.runAsUser: must not be 0")
    seccomp = (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}.securityContext.seccompProfile: RuntimeDefault or Localhost")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append(f"{where}.securityContext.capabilities.drop: must include ALL")
    if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
        problems.append(f"{where}.securityContext.capabilities.add: only NET_BIND_SERVICE")
    problems += [
        f"{where}.ports[{i}].hostPort: must not be set"
        for i, port in enumerate(container.get("ports") or [])
        if port.get("hostPort")
    ]
    return problems


def egress_ports(env: Mapping[str, str]) -> list[int]:
    """The TCP ports of the services the URLs in ``env`` name (object-store buckets aside)."""
    ports = set()
    for value in env.values():
        for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"',]+", value):
            parts = urlsplit(url)
            scheme = parts.scheme.split("+")[0]
            try:
                port = parts.port or _SCHEME_PORTS.get(scheme)
            except ValueError:  # not a port after all
                port = None
            if parts.hostname and port:
                ports.add(port)
    return sorted(ports)


def service_network_policies(
    name: str,
    namespace: str,
    selector: Mapping[str, str],
    env: Mapping[str, str],
    *,
    ingress_namespace: str,
    ingress_controller: str,
    prometheus_namespace: str | None = None,
) -> list[dict[str, Any]]:
    """Ingress: the ingress controller's pods (by namespace and name label) on the service's
    port, Prometheus's namespace too when named. Egress: DNS and the dependencies' ports."""
    peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": {"matchLabels": {_NAMESPACE_LABEL: ingress_namespace}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": ingress_controller}},
        }
    ]
    if prometheus_namespace:
        peers.append(
            {"namespaceSelector": {"matchLabels": {_NAMESPACE_LABEL: prometheus_namespace}}}
        )
    http = [{"protocol": "TCP", "port": "http"}]
    dns = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    services = [{"protocol": "TCP", "port": port} for port in egress_ports(env)]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
            "spec": {
                "podSelector": {"matchLabels": dict(selector)},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": peers, "ports": http}],
                "egress": [{"ports": dns}, {"ports": services}],
            },
        }
    ]
