"""DuckDB reading ``s3://``, as Feast's DuckDB offline store does for the snapshot sources.

Feast reads a ``FileSource`` with ``read_parquet`` on ibis's default DuckDB connection, and
DuckDB reads ``s3://`` through its httpfs extension with credentials of its own (a secret),
not boto3's. ``enable_s3_reads`` prepares that connection before a materialisation or a
historical retrieval: it loads httpfs from the ``duckdb-extension-httpfs`` wheel pinned
beside ``duckdb`` (no download from extensions.duckdb.org at run time, so air-gapped workers
and read-only home folders work), and replaces the session's S3 secret with the identity
and endpoint the task already uses for s3fs (the Airflow AWS connection), else the AWS
default chain (environment, profile, instance or pod role) resolved by botocore. Replaced
on every call, so refreshed temporary credentials reach DuckDB too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops.io.storage import StorageOptions

SECRET_NAME = "mlops_s3"
DEFAULT_REGION = "us-east-1"


class S3ReadSetupError(RuntimeError):
    """DuckDB cannot be made to read ``s3://``; the message says what is missing."""


def httpfs_extension_file(version: str) -> Path | None:
    """The httpfs binary built for DuckDB ``version``, from the pinned wheel, if installed."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        return None
    path = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{version}"
    path /= "httpfs.duckdb_extension"
    return path if path.is_file() else None


def load_httpfs(con: Any) -> None:
    """Install httpfs from the wheel (else DuckDB's own repository) and load it.

    Installed, not just loaded from the file: ibis checks ``duckdb_extensions()`` before an
    ``s3://`` read and downloads any extension it finds loaded but not installed. Installing
    copies the file once into DuckDB's extension folder (``~/.duckdb`` by default) and is a
    no-op afterwards."""
    import duckdb

    state = con.execute(
        "SELECT installed, loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchone()
    if state and all(state):
        return
    bundled = httpfs_extension_file(duckdb.__version__)
    try:
        con.execute(f"INSTALL '{bundled}'" if bundled else "INSTALL httpfs")
        con.execute("LOAD httpfs")
    except duckdb.Error as err:
        raise S3ReadSetupError(
            f"DuckDB {duckdb.__version__} cannot install or load its httpfs extension, needed "
            f"to read s3:// ({err}); install duckdb-extension-httpfs=={duckdb.__version__} "
            "and give DuckDB a writable home (or extension_directory)"
        ) from err


def _endpoint(options: StorageOptions) -> str | None:
    endpoint = dict(options.get("client_kwargs") or {}).get("endpoint_url")
    endpoint = endpoint or options.get("endpoint_url")
    return endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _ambient_identity() -> tuple[dict[str, str], str | None]:
    """Credentials and region of the AWS default chain, as boto3 would find them."""
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    found = credentials.get_frozen_credentials() if credentials else None
    identity = {}
    if found and found.access_key:
        identity = {"KEY_ID": found.access_key, "SECRET": found.secret_key}
        if found.token:
            identity["SESSION_TOKEN"] = found.token
    return identity, session.get_config_variable("region")


def secret_parameters(options: StorageOptions) -> dict[str, str]:
    """DuckDB S3 secret parameters for the identity and endpoint that s3fs uses with
    ``options`` (keys ``key``, ``secret``, ``token``, ``client_kwargs``)."""
    region = dict(options.get("client_kwargs") or {}).get("region_name")
    if options.get("key"):
        identity = {"KEY_ID": options["key"], "SECRET": options.get("secret") or ""}
        if options.get("token"):
            identity["SESSION_TOKEN"] = options["token"]
    else:
        identity, ambient_region = _ambient_identity()
        region = region or ambient_region
    parameters = {**identity, "REGION": region or DEFAULT_REGION}
    endpoint = _endpoint(options)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        # S3-compatible servers (MinIO, moto) serve buckets as paths, not host names.
        parameters |= {
            "ENDPOINT": parts.netloc + parts.path.rstrip("/"),
            "USE_SSL": str(parts.scheme == "https").lower(),
            "URL_STYLE": "path",
        }
    return parameters


def _literal(value: str) -> str:
    if value in ("true", "false"):
        return value
    return "'" + value.replace("'", "''") + "'"


def create_secret_sql(parameters: dict[str, str]) -> str:
    body = ", ".join(f"{name} {_literal(value)}" for name, value in parameters.items())
    return f"CREATE OR REPLACE SECRET {SECRET_NAME} (TYPE s3, SCOPE 's3://', {body})"


def enable_s3_reads(con: Any, options: StorageOptions | None = None) -> None:
    """Make ``con`` (a DuckDB connection) read ``s3://`` as s3fs does with ``options``."""
    load_httpfs(con)
    con.execute(create_secret_sql(secret_parameters(options or {})))


def enable_feast_s3_reads(uri: str, options: StorageOptions | None = None) -> None:
    """Prepare the connection Feast's DuckDB offline store reads with, when ``uri`` (where
    the sources live) is on S3; nothing to do for a local folder."""
    if not uri.startswith("s3://"):
        return
    import ibis

    enable_s3_reads(ibis.get_backend().con, options)
