# syntax=docker/dockerfile:1
# The project on the official Airflow image: the exact dependency set of uv.lock, so tasks,
# tests and the MLflow server import the same versions in a container as in .venv.
FROM apache/airflow:3.3.2-python3.11

# The uv release that wrote uv.lock; the image's own uv may predate the lock format.
ARG UV_VERSION=0.13.9

# MLflow's model loaders must not unpickle in any process of the image (mlops.registry.trust).
ENV GX_ANALYTICS_ENABLED=false \
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false \
    PYTHONDONTWRITEBYTECODE=1

USER airflow
WORKDIR /opt/airflow

# Dependencies first, so editing code does not invalidate this (slow) layer.
# apache-airflow is pinned on the command line as well: nothing may move the image's Airflow.
# The image's other providers (celery, postgres, ...) stay as installed; the lock adds to them.
COPY --chown=airflow:0 pyproject.toml uv.lock /opt/airflow/
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv export --frozen --no-dev --no-emit-project --output-file /tmp/requirements.txt \
    && uv pip install --no-cache "apache-airflow==3.3.2" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, editable from /opt/airflow: include/mlops and plugins/mlops_airflow import
# from these paths, which docker-compose bind-mounts for development. DuckDB's httpfs (Feast's
# s3:// reads) is installed from its wheel into ~/.duckdb now, not on a worker's first task.
COPY --chown=airflow:0 README.md /opt/airflow/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 feature_repo/ /opt/airflow/feature_repo/
RUN uv pip install --no-cache --no-deps --editable . \
    && python -c "import airflow.providers.celery.executors.celery_executor, psycopg2, mlops, mlops_airflow" \
    && python -c "import duckdb; from mlops.io.duckdb_s3 import load_httpfs; load_httpfs(duckdb.connect())"
