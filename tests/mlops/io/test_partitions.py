"""Publishing a day partition as a version and reading it through its marker, locally and on
S3 (moto's server): the marker names one version, readers never see a mix, a rerun of the
same content writes the same bytes, and a second local writer is refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from mlops.io import partitions, storage
from mlops.io.locks import PartitionLockedError, partition_lock
from mlops.schema import SUCCESS_MARKER

OLD = {"a.parquet": b"old a", "b.parquet": b"old b"}
NEW = {"a.parquet": b"new a", "c.parquet": b"new c"}


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path):
    """(partition URI, storage options) on local disk or on the session's moto server."""
    if request.param == "local":
        return str(tmp_path / "zone" / "date=2018-04-01"), None
    bucket, options = request.getfixturevalue("bucket"), request.getfixturevalue("aws_connection")
    return f"s3://{bucket}/zone/date=2018-04-01", options


def contents(uri, options):
    """The visible version of ``uri``: {name: bytes}, from its marker alone."""
    found = partitions.read_partition(uri, options)
    return {f.rsplit("/", 1)[-1]: storage.read_bytes(f, options) for f in found.files}


def entries(uri, options):
    fs, path = storage.fresh_filesystem(uri, options)
    return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path))


def test_a_publish_names_its_version_in_the_marker_and_drops_the_old_one(place):
    uri, options = place
    assert partitions.read_partition(uri, options) is None
    assert partitions.partition_files(uri, options) == []
    first = partitions.publish_partition(uri, OLD, {"rows": 2}, options)
    old_version = partitions.read_partition(uri, options).version
    assert first["files"]["a.parquet"] == {"sha256": storage.sha256(b"old a"), "bytes": 5}
    assert contents(uri, options) == OLD

    partitions.publish_partition(uri, NEW, {"rows": 2}, options)
    found = partitions.read_partition(uri, options)
    marker = json.loads(storage.read_bytes(storage.join(uri, SUCCESS_MARKER), options))
    assert marker["version"] == found.version != old_version
    assert found.manifest["rows"] == 2 and sorted(found.manifest["files"]) == sorted(NEW)
    assert contents(uri, options) == NEW
    assert entries(uri, options) == [SUCCESS_MARKER, f"v={found.version}"]  # old one removed
    assert partitions.version_folders(uri.rsplit("/", 1)[0], options) == {
        "date=2018-04-01": {found.version}
    }


def test_the_same_content_republished_is_the_same_version_and_bytes(place):
    uri, options = place
    partitions.publish_partition(uri, NEW, {"rows": 2}, options)
    fs, path = storage.fresh_filesystem(uri, options)
    before = {p: fs.cat_file(p) for p in fs.find(path)}
    partitions.publish_partition(uri, NEW, {"rows": 2}, options)
    assert {p: fs.cat_file(p) for p in fs.find(path)} == before
    assert len(before) == len(NEW) + 2  # the files, the manifest, the marker


def test_a_withdrawn_partition_reads_as_unpublished(place):
    uri, options = place
    partitions.publish_partition(uri, OLD, None, options)
    assert partitions.withdraw_partition(uri, options)
    assert partitions.read_partition(uri, options) is None
    assert not storage.exists(uri, options)


def test_a_marker_without_content_is_the_layout_before_versions(tmp_path):
    uri = tmp_path / "date=2018-04-01"
    uri.mkdir()
    (uri / "t.parquet").write_bytes(b"legacy")
    (uri / "_manifest.json").write_bytes(storage.json_bytes({"files": {"t.parquet": {}}}))
    (uri / SUCCESS_MARKER).write_bytes(b"")
    assert partitions.partition_files(str(uri)) == [str(uri / "t.parquet")]
    partitions.publish_partition(str(uri), NEW)  # the next publish replaces it whole
    version = partitions.read_partition(str(uri)).version
    assert contents(str(uri), None) == NEW
    assert sorted(p.name for p in uri.iterdir()) == [SUCCESS_MARKER, f"v={version}"]


def test_a_marker_naming_a_missing_version_fails_naming_the_partition(place):
    uri, options = place
    partitions.publish_partition(uri, OLD, None, options)
    storage.write_bytes_atomic(
        storage.join(uri, SUCCESS_MARKER), partitions.marker_bytes("0" * 16), options
    )
    with pytest.raises(partitions.PartitionError, match=r"date=2018-04-01: the marker names"):
        partitions.read_partition(uri, options)


def test_a_second_local_writer_is_refused_naming_the_partition_and_owner(tmp_path):
    uri = str(tmp_path / "date=2018-04-01")
    partitions.publish_partition(uri, OLD)
    with partition_lock(uri):  # this process is the live owner
        with pytest.raises(PartitionLockedError, match=rf"partition {uri} .* pid {os.getpid()}"):
            partitions.publish_partition(uri, NEW)
    assert contents(uri, None) == OLD
    partitions.publish_partition(uri, NEW)  # released: the next writer goes through
    assert contents(uri, None) == NEW


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    uri = tmp_path / "date=2018-04-01"
    uri.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    owner = {"pid": int(gone.stdout), "host": os.uname().nodename}
    (uri / ".lock").write_text(json.dumps(owner))
    partitions.publish_partition(str(uri), NEW)
    assert contents(str(uri), None) == NEW
    assert not (uri / ".lock").exists()


def test_s3_readers_in_another_process_see_the_switch(bucket, aws_connection, s3_server):
    """s3fs's listing cache must not hide another process's new marker."""
    uri = f"s3://{bucket}/zone/date=2018-04-01"
    partitions.publish_partition(uri, OLD, None, aws_connection)
    assert contents(uri, aws_connection) == OLD
    other = boto3.client("s3", endpoint_url=s3_server)
    version = partitions.version_of(partitions.manifest_bytes(NEW))
    for name, data in {**NEW, "_manifest.json": partitions.manifest_bytes(NEW)}.items():
        other.put_object(Bucket=bucket, Key=f"zone/date=2018-04-01/v={version}/{name}", Body=data)
    other.put_object(
        Bucket=bucket, Key="zone/date=2018-04-01/_SUCCESS", Body=partitions.marker_bytes(version)
    )
    assert contents(uri, aws_connection) == NEW
