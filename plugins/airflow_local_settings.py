"""Imported by every Airflow process as it starts (``airflow.settings.initialize`` puts the
plugins folder on ``sys.path`` and imports ``airflow_local_settings``): in the production
profile, a component refuses to run on the example or empty secrets (``mlops.secrets``)
before it serves, schedules or runs anything. A no-op in the other profiles.
"""

from __future__ import annotations

# Airflow copies every public name of this module into ``airflow.settings``: export none.
__all__: list[str] = []


def _refuse_example_secrets() -> None:
    from mlops.secrets import AIRFLOW_REQUIRED, SecretsError, check_secrets

    try:
        check_secrets(required=AIRFLOW_REQUIRED)
    except SecretsError as err:
        raise SystemExit(f"airflow: {err}") from None


_refuse_example_secrets()
