"""Feast reads the snapshots through a glob over every version folder, so the code that calls
Feast first checks that each day it needs holds only the version its marker names."""

from __future__ import annotations

from datetime import date

import pytest

from mlops.features.snapshots import SnapshotVersionsError, published_snapshots
from mlops.io.partitions import publish_partition

DAY = date(2018, 4, 1)


def publish_day(root, text):
    for entity in ("customer", "terminal"):
        publish_partition(f"{root}/{entity}/date={DAY}", {"data.parquet": text}, {"rows": 1})


def test_a_day_holding_a_second_version_is_refused_until_republished(tmp_path):
    root = str(tmp_path / "snapshots")
    publish_day(root, b"first")
    found = published_snapshots(root, [DAY], history_start=None, needed_for="materialising")
    assert sorted(found) == [f"{root}/customer/date={DAY}", f"{root}/terminal/date={DAY}"]

    stray = tmp_path / "snapshots" / "customer" / f"date={DAY}" / "v=0123456789abcdef"
    stray.mkdir()  # a crashed publish: files written, marker not switched
    (stray / "data.parquet").write_bytes(b"unpublished")
    with pytest.raises(
        SnapshotVersionsError, match=rf"customer/date={DAY} \(marker: \w+; present: \["
    ):
        published_snapshots(root, [DAY], history_start=None, needed_for="materialising")

    publish_day(root, b"second")  # the retry's publish removes what its marker does not name
    assert not stray.exists()
    assert published_snapshots(root, [DAY], history_start=None, needed_for="materialising")
