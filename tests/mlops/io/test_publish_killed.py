"""A writer killed (SIGKILL) at any step of a publish leaves the old version or the new one
visible, never a mix; the retry publishes exactly the bytes of an uninterrupted publish.
A live writer in the middle of a publish makes a second local writer fail, naming it.

The writer is a separate process (tests.support.publisher) stopped just before its N-th
write, for every N of a publish: locally each data file, the manifest, the rename of the
version into place, the marker's rename, the cleanup; on S3 (moto's server) each object PUT
and the cleanup's delete.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.io import partitions, storage
from mlops.io.locks import PartitionLockedError

REPO = Path(__file__).resolve().parents[3]
OLD = {"a.parquet": "old a", "b.parquet": "old b"}
NEW = {"a.parquet": "new a", "c.parquet": "new c", "d.parquet": "new d"}
LOCAL_STEPS = len(NEW) + 1 + 2 + 1  # files and manifest, two renames, the cleanup
S3_STEPS = len(NEW) + 2 + 1  # files, manifest and marker PUTs, the cleanup


def encoded(files):
    return {name: text.encode() for name, text in files.items()}


def publisher(uri, options, mode, step):
    command = [sys.executable, "-m", "tests.support.publisher", uri, json.dumps(NEW)]
    command += [json.dumps(options or {}), mode, str(step)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)


def visible(uri, options):
    found = partitions.read_partition(uri, options)
    return {f.rsplit("/", 1)[-1]: storage.read_bytes(f, options) for f in found.files}


def tree(uri, options):
    """Every object under the partition, relative, with its bytes."""
    fs, path = storage.fresh_filesystem(uri, options)
    return {p.removeprefix(path.rstrip("/")): fs.cat_file(p) for p in fs.find(path)}


def kill_at_every_step(uri, reference, options, steps):
    reached_new = False
    for step in range(steps + 1):
        partitions.publish_partition(uri, encoded(OLD), {"rows": len(OLD)}, options)
        writer = publisher(uri, options, "kill", step)
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == (0 if step == steps else -signal.SIGKILL), (step, out)
        seen = visible(uri, options)
        assert seen in (encoded(OLD), encoded(NEW)), f"a mix after a kill at step {step}"
        reached_new |= seen == encoded(NEW)
        partitions.publish_partition(uri, encoded(NEW), {"rows": len(NEW)}, options)  # retry
        assert tree(uri, options) == reference, f"the retry after step {step} differs"
    assert reached_new  # the marker's switch happened before the last steps (the cleanup)


def test_a_local_writer_killed_at_any_step_leaves_old_or_new(tmp_path):
    reference = str(tmp_path / "clean" / "date=2018-04-01")
    partitions.publish_partition(reference, encoded(NEW), {"rows": len(NEW)})
    uri = str(tmp_path / "zone" / "date=2018-04-01")
    kill_at_every_step(uri, tree(reference, None), None, LOCAL_STEPS)
    assert not list(Path(uri).glob(".*"))  # no staging folder or lock left behind


def test_an_s3_writer_killed_at_any_step_leaves_old_or_new(bucket, aws_connection):
    reference = f"s3://{bucket}/clean/date=2018-04-01"
    partitions.publish_partition(reference, encoded(NEW), {"rows": len(NEW)}, aws_connection)
    uri = f"s3://{bucket}/zone/date=2018-04-01"
    kill_at_every_step(uri, tree(reference, aws_connection), aws_connection, S3_STEPS)


def test_a_live_local_writer_refuses_a_second_until_it_dies(tmp_path):
    uri = str(tmp_path / "zone" / "date=2018-04-01")
    partitions.publish_partition(uri, encoded(OLD))
    writer = publisher(uri, None, "hold", 2)  # holding the lock, two files written
    try:
        assert writer.stdout.readline().strip() == "holding"
        with pytest.raises(PartitionLockedError, match=rf"partition {uri} .*pid {writer.pid} "):
            partitions.publish_partition(uri, encoded(NEW))
        assert visible(uri, None) == encoded(OLD)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    partitions.publish_partition(uri, encoded(NEW))  # the dead writer's lock is taken over
    assert visible(uri, None) == encoded(NEW)
