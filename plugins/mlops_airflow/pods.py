"""Training in a Kubernetes pod: the cncf-kubernetes provider's ``KubernetesPodOperator``
running ``python -m mlops.training`` (the ``model_training`` DAG's two steps) in the project
image, with the container environment the service's manifests use (``mlops.manifests``).

Every training argument may be a Jinja template (``arguments`` is a templated field): the
default as-of day is the run's logical date, or when it was due for a run without one, as
``mlops_airflow.context.as_of_day`` decides in the DAG.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops.manifests.kubernetes import (
    PART_OF,
    TRAINING_RESOURCES,
    ClusterTarget,
    Resources,
    container_env,
    secret_keys,
    workload_env,
)
from mlops.manifests.security import container_security_context, pod_security_context
from mlops.settings import Settings

AS_OF_DAY = "{{ (logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}"
TRAINING_ENTRY = ("python", "-m", "mlops.training")


def training_arguments(
    as_of: str,
    *,
    family: str | None = None,
    window_days: int | str = 21,
    eval_days: int | str = 7,
    hyperparameters: Mapping[str, Any] | str | None = None,
    seed: int | str = 0,
    reason: str = "",
    dag_id: str = "{{ dag.dag_id }}",
    run_id: str = "{{ run_id }}",
) -> list[str]:
    """The container's arguments: the image's entrypoint runs ``python -m mlops.training``."""
    if not isinstance(hyperparameters, str):
        hyperparameters = json.dumps(dict(hyperparameters or {}), sort_keys=True)
    args = [
        *TRAINING_ENTRY,
        "--as-of",
        as_of,
        "--window-days",
        str(window_days),
        "--eval-days",
        str(eval_days),
        "--hyperparameters",
        hyperparameters,
        "--seed",
        str(seed),
        "--dag-id",
        dag_id,
        "--run-id",
        run_id,
    ]
    if family:
        args += ["--family", family]
    if reason:
        args += ["--reason", reason]
    return args


def training_pod(
    settings: Settings,
    target: ClusterTarget,
    *,
    task_id: str = "train_in_pod",
    as_of: str = AS_OF_DAY,
    resources: Resources = TRAINING_RESOURCES,
    training: Mapping[str, Any] | None = None,
    **operator_kwargs: Any,
) -> Any:
    """A ``KubernetesPodOperator`` that trains and gates as of ``as_of`` in ``target``.

    ``training`` holds the keyword arguments of ``training_arguments`` (family, window, ...);
    ``operator_kwargs`` go to the operator (a connection, retries, ...). The pod is deleted
    when it finishes, whatever the outcome; its log is the task's log."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    workload = workload_env(settings)
    env = container_env(workload)
    # one key of the Secret at a time, as the service does: the pod sees only what it uses
    from_secret = [
        k8s.V1EnvVar(
            name=key,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=target.secret_name, key=key)
            ),
        )
        for key in sorted(secret_keys(workload))
    ]
    options: dict[str, Any] = {
        "name": "mlops-training",
        "labels": {
            "app.kubernetes.io/name": "mlops-training",
            "app.kubernetes.io/part-of": PART_OF,
        },
        "on_finish_action": "delete_pod",
        "get_logs": True,
        "startup_timeout_seconds": 600,  # a cold node pulls a multi-GB image first
    } | operator_kwargs
    return KubernetesPodOperator(
        task_id=task_id,
        namespace=target.namespace,
        image=target.image,
        image_pull_policy=target.image_pull_policy,
        arguments=training_arguments(as_of, **dict(training or {})),
        env_vars=[k8s.V1EnvVar(name=e["name"], value=e["value"]) for e in env] + from_secret,
        container_resources=k8s.V1ResourceRequirements(**resources.to_dict()),
        # Pod Security "restricted"; the root filesystem stays writable: training's writes
        # (Feast, DuckDB, MLflow) have not been mapped to volumes on a cluster yet
        security_context=pod_security_context(),
        container_security_context=container_security_context(read_only_root=False),
        automount_service_account_token=False,
        **options,
    )
