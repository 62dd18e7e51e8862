"""Airflow plugin: the scheduler preloads the task-time modules (``mlops_airflow.preload``).

A no-op unless ``MLOPS_PRELOAD=1``; it registers nothing else.
"""

from __future__ import annotations

from airflow.sdk.plugins_manager import AirflowPlugin

from mlops_airflow.preload import preload


class MlopsPreloadPlugin(AirflowPlugin):
    name = "mlops_preload"

    @classmethod
    def on_load(cls, *args, **kwargs) -> None:
        preload()
