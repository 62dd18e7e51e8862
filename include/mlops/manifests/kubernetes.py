"""Kubernetes manifests of the model service, and the container environment of every workload.

The model service's container gets the compose file's ``model-service`` environment (the
production environment's one definition, ``mlops.manifests.environment``): the same keys and
values, the service names being the same DNS names in the namespace. Only the listening
address is the manifest's own (every interface, the container port). The training pods get
their environment rendered from ``Settings``: ``load_settings`` reads it back into the very
same object (tested).

Credentials stay out of the manifests. The pods read a Secret (``ClusterTarget.secret_name``)
one key at a time (``secretKeyRef``), and the plain environment leaves out what the Secret
supplies: every variable whose URL carries a password (the prediction log and the Feast
registry in PostgreSQL) and, for the service, every variable compose takes from .env. The
service's Deployment lists those keys in its ``SECRET_KEYS_ANNOTATION``; its Secret holds
only them, no object-store key (the training pods' Secret adds the ``AWS_*`` variables).

Pods run under Pod Security "restricted", the service on a read-only root filesystem, and
NetworkPolicies let only the ingress controller reach it (``mlops.manifests.security``).

Probes of the service (``mlops.serving.app``):

- uvicorn binds its port only after start-up (Feast warm-up, first registry read, model
  load: tens of seconds), so a **startup** probe on ``/live`` allows up to five minutes;
- **readiness** is ``/health``: 503 until a champion is loaded, so no traffic reaches a pod
  that cannot answer;
- **liveness** is ``/live``, not ``/health``: a pod waiting for its first champion (a new
  registry, or one briefly unreachable) is healthy, and restarting it would not help.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlops.manifests.security import (
    TMP_MOUNT,
    TMP_VOLUME,
    container_security_context,
    image_pin_problem,
    pod_security_context,
    restricted_violations,
    secret_env,
    service_network_policies,
)
from mlops.serving.config import SERVE, ServingConfig, load_serving_config
from mlops.settings import DEFAULT_FEATURE_REPO, PREFIX, ConfigError, Settings, load_settings

KUBERNETES_VERSION = "1.33"  # the API schemas the manifests are validated against
PART_OF = "mlops-fraud"
HTTP_PORT_NAME = "http"
# The image's entrypoint (Airflow's) waits for Airflow's database unless told not to.
NOT_AN_AIRFLOW_PROCESS = {"CONNECTION_CHECK_MAX_COUNT": "0"}
# On the Deployment: the keys its pods expect from the Secret (comma-separated).
SECRET_KEYS_ANNOTATION = f"{PART_OF}/secret-keys"
SERVICE_ARGS = ("python", "-m", "mlops.serving.app")  # as the compose file's model-service

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class ManifestError(ValueError):
    """A manifest the API server would refuse; the message names the object and the field."""


@dataclass(frozen=True)
class ClusterTarget:
    """Where and as what the project runs on a cluster."""

    image: str
    namespace: str = "mlops"
    secret_name: str = "mlops-fraud"
    image_pull_policy: str = "IfNotPresent"
    # Who may reach the service (NetworkPolicy): the ingress controller's pods, by namespace
    # and ``app.kubernetes.io/name``; Prometheus's namespace only when named.
    ingress_namespace: str = "ingress-nginx"
    ingress_controller: str = "ingress-nginx"
    prometheus_namespace: str | None = None

    def __post_init__(self) -> None:
        if not self.image or any(c.isspace() for c in self.image):
            raise ConfigError(f"image must be a container image reference, got {self.image!r}")
        if problem := image_pin_problem(self.image):
            raise ConfigError(problem)
        labels = ("namespace", "secret_name", "ingress_namespace", "ingress_controller")
        for field_name in (*labels, "prometheus_namespace"):
            value = getattr(self, field_name)
            if value is None:
                continue
            if len(value) > 63 or not _DNS_LABEL.match(value):
                raise ConfigError(f"{field_name} must be a DNS label (a-z, 0-9, -), got {value!r}")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise ConfigError(
                "image_pull_policy must be Always, IfNotPresent or Never, "
                f"got {self.image_pull_policy!r}"
            )


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container, in Kubernetes quantities."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def __post_init__(self) -> None:
        for field_name, value in vars(self).items():
            if not _QUANTITY.match(value):
                raise ConfigError(f"resources {field_name} must be a quantity, got {value!r}")

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


# One process, one OpenMP thread: a core covers it. Memory: 385 MB peak RSS measured with
# one HGB champion (tests/mlops/serving/test_service.py); a rollout holds two models, and a
# random forest weighs tens of MB more.
SERVICE_RESOURCES = Resources("500m", "768Mi", "1", "2Gi")
TRAINING_RESOURCES = Resources("1", "2Gi", "2", "6Gi")


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``MLOPS_*`` variables that ``load_settings`` reads back into ``settings``.

    The feature repository is left to the image when it is the package's own (the path of
    the checkout that renders is not the image's)."""
    rules = settings.validation
    values = {
        "PROFILE": settings.profile,
        "DATA_ROOT": settings.data_root,
        "LANDING_URI": settings.landing_uri,
        "AWS_CONN_ID": settings.aws_conn_id,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "REDIS_URL": settings.redis_url,
        "REDIS_TIMEOUT_S": repr(settings.redis_timeout_s),
        "LABEL_DELAY_DAYS": str(settings.label_delay_days),
        "MAX_AMOUNT": repr(rules.max_amount),
        "MIN_ROWS": str(rules.min_rows),
        "MAX_ROWS": str(rules.max_rows),
        "BAD_ROW_TOLERANCE": repr(rules.bad_row_tolerance),
        "HISTORY_START": settings.history_start.isoformat(),
        "ONLINE_STORE": settings.online_store,
        "FEAST_REGISTRY": settings.feast_registry,
        "FEATURE_REPO": None
        if settings.feature_repo == str(DEFAULT_FEATURE_REPO)
        else settings.feature_repo,
        "PREDICTION_LOG_URL": settings.prediction_log_url,
        "ALERT_WEBHOOK_URL": settings.alert_webhook_url,
    }
    return {PREFIX + name: value for name, value in values.items() if value}


def listening_env(config: ServingConfig) -> dict[str, str]:
    """Where the service listens in a pod: every interface (a pod's loopback is unreachable
    from the Service), on the container's port."""
    return {SERVE + "HOST": "0.0.0.0", SERVE + "PORT": str(config.port)}


def credentialed(env: Mapping[str, str]) -> list[str]:
    """Names of the variables whose value is a URL carrying a password."""
    found = []
    for name, value in env.items():
        try:
            password = urlsplit(value).password
        except ValueError:  # not a URL at all
            password = None
        if password:
            found.append(name)
    return sorted(found)


def container_env(env: Mapping[str, str], secret: Collection[str] = ()) -> list[dict[str, str]]:
    """``env`` as a container's ``env`` list, without the credentialed values nor those named
    in ``secret`` (the Secret supplies them through ``envFrom``; an ``env`` entry would win
    over it)."""
    hidden = set(credentialed(env)) | set(secret)
    return [{"name": k, "value": v} for k, v in sorted(env.items()) if k not in hidden]


def secret_keys(env: Mapping[str, str]) -> list[str]:
    """What the workloads' Secret must hold: the object store's credentials and the
    credentialed settings left out of the manifests."""
    return ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", *credentialed(env)]


def service_secret_keys(env: Mapping[str, str], secret: Collection[str] = ()) -> list[str]:
    """What the model service's Secret must hold: the credentialed variables of its
    environment and those named in ``secret``; no object-store key."""
    return sorted(set(credentialed(env)) | (set(secret) & env.keys()))


def workload_env(settings: Settings) -> dict[str, str]:
    """The environment every project container gets: the settings, the object store's
    endpoint for plain boto3/s3fs clients (as in the compose file), no database wait. Not the
    alert webhook: a pod never alerts (the Airflow worker's callback does), and a chat
    webhook's URL is its secret."""
    endpoint = {"AWS_ENDPOINT_URL_S3": settings.s3_endpoint_url} if settings.s3_endpoint_url else {}
    env = {**settings_env(settings), **endpoint, **NOT_AN_AIRFLOW_PROCESS}
    env.pop(PREFIX + "ALERT_WEBHOOK_URL", None)
    return env


def _probe(path: str, period_s: int, failures: int, timeout_s: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period_s,
        "failureThreshold": failures,
        "timeoutSeconds": timeout_s,
    }


def _service_container(
    env: Mapping[str, str],
    config: ServingConfig,
    target: ClusterTarget,
    resources: Resources,
    secret: Collection[str],
) -> dict[str, Any]:
    return {
        "name": "model-service",
        "image": target.image,
        "imagePullPolicy": target.image_pull_policy,
        "args": list(SERVICE_ARGS),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": config.port, "protocol": "TCP"}],
        "env": container_env(env, secret) + secret_env(secret, target.secret_name),
        "volumeMounts": [dict(TMP_MOUNT)],
        "resources": resources.to_dict(),
        "startupProbe": _probe("/live", period_s=5, failures=60, timeout_s=3),
        "readinessProbe": _probe("/health", period_s=5, failures=2, timeout_s=3),
        "livenessProbe": _probe("/live", period_s=20, failures=3, timeout_s=5),
        "securityContext": container_security_context(read_only_root=True),
    }


def service_manifests(
    env: Mapping[str, str],
    target: ClusterTarget,
    *,
    secret: Collection[str] = (),
    replicas: int = 2,
    resources: Resources = SERVICE_RESOURCES,
    name: str = "model-service",
) -> list[dict[str, Any]]:
    """The model service's Deployment and its ClusterIP Service (port 80 -> the service's).

    ``env`` is the service's environment (the compose block); it must read back as valid
    settings and serving config (``ConfigError`` otherwise). The variables named in
    ``secret`` and the credentialed ones come from the Secret, not the manifest."""
    if not 0 <= replicas <= 100:
        raise ConfigError(f"replicas must be in [0, 100], got {replicas}")
    load_settings(env)  # refuses what the service would refuse at start-up
    config = load_serving_config(env)
    env = {**env, **listening_env(config)}
    keys = service_secret_keys(env, secret)
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}
    metadata = {"name": name, "namespace": target.namespace, "labels": dict(selector)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**metadata, "annotations": {SECRET_KEYS_ANNOTATION: ",".join(keys)}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            # a new pod takes tens of seconds to be ready: never drop one before it is
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(selector),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/path": "/metrics",
                        "prometheus.io/port": str(config.port),
                    },
                },
                "spec": {
                    "containers": [_service_container(env, config, target, resources, keys)],
                    "securityContext": pod_security_context(),  # the image's user
                    "automountServiceAccountToken": False,  # it never calls the API server
                    "volumes": [dict(TMP_VOLUME)],
                    "terminationGracePeriodSeconds": 30,  # the log writer flushes on SIGTERM
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(metadata),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": HTTP_PORT_NAME, "port": 80, "targetPort": HTTP_PORT_NAME}],
        },
    }
    policies = service_network_policies(
        name,
        target.namespace,
        selector,
        env,
        ingress_namespace=target.ingress_namespace,
        ingress_controller=target.ingress_controller,
        prometheus_namespace=target.prometheus_namespace,
    )
    return [deployment, service, *policies]


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    template = (doc.get("spec") or {}).get("template")
    return None if template is None else template.get("spec") or {}


def _missing_images(doc: Mapping[str, Any]) -> list[str]:
    """The schema leaves ``image`` optional (controllers may fill it); the API server does
    not for a Pod or a pod template."""
    spec = _pod_spec(doc)
    if spec is None:
        return []
    prefix = "spec" if doc.get("kind") == "Pod" else "spec.template.spec"
    return [
        f"{prefix}.{group}[{i}].image: a container needs an image"
        for group in ("initContainers", "containers")
        for i, container in enumerate(spec.get(group) or [])
        if not container.get("image")
    ]


def _unpinned_images(doc: Mapping[str, Any]) -> list[str]:
    spec = _pod_spec(doc) or {}
    return [
        problem
        for group in ("initContainers", "containers")
        for container in spec.get(group) or []
        if container.get("image") and (problem := image_pin_problem(container["image"]))
    ]


def validate_manifests(
    docs: list[Mapping[str, Any]], kubernetes_version: str = KUBERNETES_VERSION
) -> None:
    """Check every manifest against the Kubernetes API schemas bundled with
    ``kubernetes-validate`` (strict: unknown fields are errors), offline, and every pod
    against Pod Security "restricted" with a pinned image. Raises ``ManifestError`` listing
    each refused object with the path of its bad field."""
    import kubernetes_validate

    errors = []
    for doc in docs:
        who = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(dict(doc), kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{who}: {_where(err.path) or '(top)'}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            errors.append(f"{who}: {err.message}")
        errors += [f"{who}: {problem}" for problem in _missing_images(doc)]
        errors += [f"{who}: {problem}" for problem in _unpinned_images(doc)]
        errors += [f"{who}: Pod Security restricted: {p}" for p in restricted_violations(doc)]
    if errors:
        raise ManifestError("invalid Kubernetes manifests:\n" + "\n".join(errors))


def manifests_yaml(docs: list[Mapping[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(
        [dict(doc) for doc in docs], sort_keys=False, default_flow_style=False
    )
