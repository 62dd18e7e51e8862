"""The model service on a cluster, offline (the rendered YAML, no cluster): Pod Security
"restricted", a read-only root with an emptyDir for /tmp, only the Secret keys it uses, a
pinned image, and NetworkPolicies that let only the ingress controller reach it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mlops.manifests.environment import MODEL_SERVICE, service_environment
from mlops.manifests.kubernetes import (
    SECRET_KEYS_ANNOTATION,
    ClusterTarget,
    ManifestError,
    credentialed,
    service_manifests,
    validate_manifests,
)
from mlops.manifests.security import egress_ports, image_pin_problem, restricted_violations

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "model-service.yaml"
DOCS = list(yaml.safe_load_all(MANIFEST.read_text()))
DEPLOYMENT = next(d for d in DOCS if d["kind"] == "Deployment")
POD = DEPLOYMENT["spec"]["template"]["spec"]
POLICIES = [d for d in DOCS if d["kind"] == "NetworkPolicy"]
ENV = service_environment(MODEL_SERVICE, {})
DIGEST = "registry.example/mlops-fraud@sha256:" + "ab" * 32


def test_the_checked_in_manifest_passes_pod_security_restricted():
    assert [restricted_violations(doc) for doc in DOCS] == [[]] * len(DOCS)
    assert POD["securityContext"]["runAsNonRoot"] is True
    assert POD["securityContext"]["runAsUser"] != 0
    assert POD["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert POD["automountServiceAccountToken"] is False
    for container in POD["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert context["runAsNonRoot"] is True


def test_the_root_filesystem_is_read_only_and_tmp_an_empty_dir():
    container = POD["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in POD["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert set(volumes["tmp"]) == {"name", "emptyDir"}


def test_the_pod_sees_only_the_secret_keys_it_uses():
    container = POD["containers"][0]
    assert "envFrom" not in container
    assert not [v for v in POD["volumes"] if "secret" in v or "projected" in v]
    refs = [e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e]
    keys = DEPLOYMENT["metadata"]["annotations"][SECRET_KEYS_ANNOTATION].split(",")
    assert credentialed(ENV) == ["MLOPS_FEAST_REGISTRY", "MLOPS_PREDICTION_LOG_URL"]
    assert refs == keys == [*credentialed(ENV), "MLOPS_SERVE_TOKEN"]  # the bearer token too


def test_the_image_is_pinned():
    assert image_pin_problem(POD["containers"][0]["image"]) is None
    for image in (DIGEST, "img:1.2.3", "registry:5000/team/img:v7", "img:3f2a9c1"):
        assert ClusterTarget(image).image == image


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("img", "image 'img' has no tag"),
        ("registry:5000/img", "image 'registry:5000/img' has no tag"),
        ("img:latest", "has the moving tag 'latest'"),
        ("mlops-fraud-airflow:local", "has the moving tag 'local'"),
    ],
)
def test_an_image_that_moves_is_refused(image, message):
    with pytest.raises(ValueError, match=message):
        ClusterTarget(image)


def test_only_the_ingress_controller_reaches_the_service():
    (policy,) = POLICIES
    selector = DEPLOYMENT["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["podSelector"] == {"matchLabels": selector}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {  # one peer: pods of that name in that namespace, not either
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]


def test_the_service_reaches_dns_and_its_dependencies_only():
    (policy,) = POLICIES
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]]
    assert all("to" not in rule for rule in policy["spec"]["egress"])
    assert sorted(set(ports)) == [53, 5000, 5432, 6379] == sorted({53, *egress_ports(ENV)})


def test_prometheus_is_let_in_only_when_named():
    target = ClusterTarget("img:1", prometheus_namespace="monitoring", ingress_namespace="edge")
    docs = service_manifests(ENV, target)
    validate_manifests(docs)
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    peers = policy["spec"]["ingress"][0]["from"]
    names = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers]
    assert names == ["edge", "monitoring"]


def broken(change) -> list[dict]:
    docs = copy.deepcopy(DOCS)
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    change(pod, pod["containers"][0]["securityContext"])
    return docs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda pod, c: c.__setitem__("allowPrivilegeEscalation", True),
            r"containers\[0\]\.securityContext\.allowPrivilegeEscalation: must be false",
        ),
        (
            lambda pod, c: c.__setitem__("capabilities", {"drop": ["NET_RAW"]}),
            r"containers\[0\]\.securityContext\.capabilities\.drop: must include ALL",
        ),
        (
            lambda pod, c: c.__setitem__("capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            r"capabilities\.add: only NET_BIND_SERVICE",
        ),
        (
            lambda pod, c: (c.pop("runAsNonRoot"), pod["securityContext"].pop("runAsNonRoot")),
            r"containers\[0\]\.securityContext\.runAsNonRoot: must be true",
        ),
        (
            lambda pod, c: (
                c.pop("seccompProfile"),
                pod["securityContext"].__setitem__("seccompProfile", {"type": "Unconfined"}),
            ),
            r"seccompProfile: RuntimeDefault or Localhost",
        ),
        (
            lambda pod, c: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            r"spec\.template\.spec\.volumes\[1\]: \['hostPath'\] volumes are not allowed",
        ),
        (lambda pod, c: pod.__setitem__("hostNetwork", True), r"hostNetwork: must not be true"),
        (
            lambda pod, c: pod["containers"][0].__setitem__("image", "img:latest"),
            r"Deployment/model-service: image 'img:latest' has the moving tag",
        ),
    ],
)
def test_a_manifest_that_breaks_restricted_is_refused_naming_the_field(change, message):
    with pytest.raises(ManifestError, match=message):
        validate_manifests(broken(change))
