"""The production data path of the feature store: partitions on S3 (moto's server),
read back by Feast's DuckDB offline store through httpfs, served from Redis.

The credentials and the endpoint come from the environment alone (``AWS_*`` and
``AWS_ENDPOINT_URL_S3``), as on a worker with an instance or pod role and no Airflow
connection; the Airflow connection's path is run by the transactions_daily S3 test.
"""

from __future__ import annotations

import pytest

from mlops import zones
from mlops.features.store import apply_definitions
from mlops.io import storage
from mlops.training.sets import build_training_set
from mlops.training.windows import training_window
from tests.support.feature_data import day, publish_all, settings_for, transactions
from tests.support.feature_store import check_skew

pytestmark = pytest.mark.integration

WINDOW = training_window(day(47), 14, 7)


@pytest.fixture(scope="module")
def local_root(tmp_path_factory):
    return publish_all(tmp_path_factory.mktemp("s3"), transactions())


@pytest.fixture
def settings(local_root, s3_server, bucket, redis_db, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("FEAST_S3_ENDPOINT_URL", s3_server)
    fs, _ = storage.filesystem(f"s3://{bucket}")
    for zone in ("validated", "features"):
        fs.put(str(local_root / zone), f"{bucket}/data/{zone}", recursive=True)
    settings = settings_for(
        f"s3://{bucket}/data", ONLINE_STORE="redis", REDIS_URL=redis_db, S3_ENDPOINT_URL=s3_server
    )
    assert apply_definitions(settings).changed
    return settings


def build(settings):
    return build_training_set(
        settings, start=WINDOW.start, end=WINDOW.end, validated_uri=settings.zone("validated")
    )


def test_training_set_from_s3_equals_the_one_from_a_local_folder(settings, local_root):
    import pandas as pd

    local = settings_for(local_root)
    apply_definitions(local)
    expected, remote = build(local), build(settings)
    assert len(remote.frame) > 5000
    pd.testing.assert_frame_equal(remote.frame, expected.frame, check_exact=True)
    root = settings.data_root
    assert {k.removeprefix(root): v for k, v in remote.inputs.items()} == {
        k.removeprefix(str(local_root)): v for k, v in expected.inputs.items()
    }
    assert any(uri.startswith(f"{root}/{zones.SNAPSHOTS}") for uri in remote.inputs)


def test_snapshots_on_s3_served_from_redis_equal_the_training_rows(settings):
    assert check_skew(settings, day(46)) > 300
    assert storage.exists(f"{settings.data_root}/feast/registry.db")
