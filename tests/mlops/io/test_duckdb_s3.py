"""How DuckDB is told to read s3:// as s3fs does: the secret from the task's options or from
the AWS default chain, and the httpfs extension from the pinned wheel."""

from __future__ import annotations

import duckdb
import pytest

from mlops.io.duckdb_s3 import (
    create_secret_sql,
    enable_s3_reads,
    httpfs_extension_file,
    secret_parameters,
)
from mlops.io.storage import s3_options


@pytest.fixture
def no_ambient_aws(monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_options_of_an_airflow_connection_become_the_secret(no_ambient_aws):
    options = s3_options(
        endpoint_url="http://minio:9000", key="ak", secret="sk", region="eu-west-1", token="tk"
    )
    assert secret_parameters(options) == {
        "KEY_ID": "ak",
        "SECRET": "sk",
        "SESSION_TOKEN": "tk",
        "REGION": "eu-west-1",
        "ENDPOINT": "minio:9000",
        "USE_SSL": "false",
        "URL_STYLE": "path",
    }
    tls = secret_parameters(s3_options(endpoint_url="https://s3.example.org/", key="a", secret="b"))
    assert (tls["ENDPOINT"], tls["USE_SSL"], tls["REGION"]) == (
        "s3.example.org",
        "true",
        "us-east-1",
    )


def test_without_keys_the_aws_default_chain_is_used(no_ambient_aws, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    parameters = secret_parameters({})
    assert parameters["KEY_ID"] == "env-key" and parameters["SESSION_TOKEN"] == "env-token"
    assert parameters["REGION"] == "ap-south-1" and parameters["ENDPOINT"] == "127.0.0.1:9000"


def test_amazon_s3_itself_keeps_virtual_host_urls(no_ambient_aws):
    parameters = secret_parameters({})
    assert parameters == {"REGION": "us-east-1"}  # no keys anywhere: anonymous reads


def test_secret_values_are_quoted_and_the_secret_is_accepted_by_duckdb():
    sql = create_secret_sql({"KEY_ID": "it's", "SECRET": "x", "USE_SSL": "false"})
    assert "KEY_ID 'it''s'" in sql and "USE_SSL false" in sql
    con = duckdb.connect()
    enable_s3_reads(con, s3_options(endpoint_url="http://127.0.0.1:1", key="it's", secret="x"))
    installed, loaded = con.execute(
        "SELECT installed, loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchone()
    assert installed and loaded
    secret = con.execute("SELECT type, scope FROM duckdb_secrets() WHERE name = 'mlops_s3'")
    assert secret.fetchone() == ("s3", ["s3://"])
    enable_s3_reads(con, s3_options(key="other", secret="y"))  # replaced, not duplicated
    assert con.execute("SELECT count(*) FROM duckdb_secrets()").fetchone() == (1,)


def test_the_extension_comes_from_the_wheel_of_the_installed_duckdb():
    path = httpfs_extension_file(duckdb.__version__)
    assert path is not None and path.parts[-3:] == (
        "extensions",
        f"v{duckdb.__version__}",
        "httpfs.duckdb_extension",
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{path}'")  # a binary built for another DuckDB version would not load
    loaded = "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    assert con.execute(loaded).fetchone() == (True,)
    assert httpfs_extension_file("0.0.1") is None
