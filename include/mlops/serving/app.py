"""The model service's entry point (``make serve``, the ``model-service`` container):
``python -m mlops.serving.app``.

It starts the loader process (``mlops.serving.loader``) before it imports the web stack, so
the loader's imports (MLflow, skops, scikit-learn: seconds) run beside this process's own
(FastAPI, pandas) and the feature store's warm-up: a start-up is the longer of the two, not
their sum. Only light modules are imported above ``main``; the HTTP app is
``mlops.serving.api``. Secrets, the token and the settings are checked before anything starts.
"""

from __future__ import annotations

import logging

from mlops.serving.config import load_serving_config, require_token
from mlops.serving.loader import LoaderProcess
from mlops.serving.startup import refuse_example_secrets, refuse_pickle
from mlops.settings import ConfigError, load_settings


def main() -> None:
    refuse_example_secrets()
    refuse_pickle()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config, settings = load_serving_config(), load_settings()
        require_token(config.token)  # before anything starts; the guard keeps it
    except ConfigError as err:
        raise SystemExit(f"model service: {err}") from None
    loader = LoaderProcess(
        settings.mlflow_tracking_uri, config.model_name, timeout_s=config.load_timeout_s
    )
    loader.start()
    try:
        import uvicorn

        from mlops.serving.api import create_app
        from mlops.serving.startup import cap_native_threads, in_memory_metrics, tune_interpreter

        cap_native_threads(config.threads)
        tune_interpreter()
        in_memory_metrics()
        app = create_app(settings, config, loader=loader)
        app.middleware_stack = app.build_middleware_stack()
        uvicorn.run(app, host=config.host, port=config.port, access_log=False, log_level="info")
    finally:
        loader.stop()


if __name__ == "__main__":
    main()
