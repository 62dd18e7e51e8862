"""Reading and writing single objects under a local folder or an ``s3://`` URI.

Every local write goes to a temporary name first and is renamed into place, so a reader
never sees half a file; on S3 a single PUT is already atomic. Day partitions (several files,
a manifest and a marker) are published and read by ``mlops.io.partitions``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import fsspec

if TYPE_CHECKING:  # imported where used: a process that only moves bytes skips pandas
    import pandas as pd

StorageOptions = Mapping[str, Any]
# botocore's own defaults are 60 s to connect and 60 s per read, with retries; a stalled S3
# endpoint then holds a task for minutes per call. These bound each call to about
# 3 tries of (5 s connect + 30 s read); the task's execution_timeout bounds the rest.
S3_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 30,
    "retries": {"max_attempts": 2, "mode": "standard"},  # retries: 3 tries in all
}


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(uri: str, options: StorageOptions | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``uri`` and the path inside it."""
    return fsspec.core.url_to_fs(uri, **dict(options or {}))


def fresh_filesystem(uri: str, options: StorageOptions | None) -> tuple[Any, str]:
    """``filesystem``, its listing cache for the path dropped: s3fs instances are shared
    within a process and answer ``ls`` and ``exists`` from listings taken earlier, so a
    long-lived process (a driver, the service, a preloaded worker) would not see what
    other processes wrote or removed since."""
    fs, path = filesystem(uri, options)
    if is_remote(uri):
        fs.invalidate_cache(path)
    return fs, path


def s3_options(
    endpoint_url: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    region: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """s3fs options from plain values (an Airflow connection or the environment), with
    every call of the client bounded (``S3_CLIENT_CONFIG``, botocore's ``Config``)."""
    options: dict[str, Any] = {"config_kwargs": copy.deepcopy(S3_CLIENT_CONFIG)}
    if key:
        options |= {"key": key, "secret": secret}
        if token:
            options["token"] = token
    client_kwargs = {
        k: v for k, v in (("endpoint_url", endpoint_url), ("region_name", region)) if v
    }
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def exists(uri: str, options: StorageOptions | None = None) -> bool:
    fs, path = fresh_filesystem(uri, options)
    return fs.exists(path)


def read_bytes(uri: str, options: StorageOptions | None = None) -> bytes:
    fs, path = filesystem(uri, options)
    with fs.open(path, "rb") as handle:
        return handle.read()


def read_json(uri: str, options: StorageOptions | None = None) -> Any:
    return json.loads(read_bytes(uri, options))


def list_data_files(uri: str, options: StorageOptions | None = None) -> list[str]:
    """Files of a partition folder, sorted, without markers, manifests or hidden files."""
    fs, path = fresh_filesystem(uri, options)
    if not fs.exists(path):
        return []
    protocol = uri.split("://", 1)[0] if is_remote(uri) else None
    found = []
    for entry in fs.ls(path, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "file" or name.startswith(("_", ".")):
            continue
        found.append(f"{protocol}://{entry['name']}" if protocol else entry["name"])
    return sorted(found)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bytes_atomic(uri: str, data: bytes, options: StorageOptions | None = None) -> str:
    """Write one object so that it appears whole or not at all."""
    fs, path = filesystem(uri, options)
    if is_remote(uri):
        fs.pipe_file(path, data)
        return uri
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return uri


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=True, default=str).encode()


def write_json_atomic(uri: str, payload: Any, options: StorageOptions | None = None) -> str:
    return write_bytes_atomic(uri, json_bytes(payload), options)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes, timestamps in microseconds (Feast's DuckDB store needs it)."""
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return sink.getvalue()


def arrow_parquet_bytes(table: Any) -> bytes:
    """A ``pyarrow.Table`` as Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_parquet(uri: str, options: StorageOptions | None = None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(read_bytes(uri, options))).to_pandas()


def remove(uri: str, options: StorageOptions | None = None) -> bool:
    """Delete a file or folder if it exists; True when something was removed."""
    fs, path = fresh_filesystem(uri, options)
    if not fs.exists(path):
        return False
    fs.rm(path, recursive=True)
    return True


def read_many(uris: list[str], options: StorageOptions | None = None) -> dict[str, bytes]:
    """The bytes of each of ``uris`` that exists (the missing ones left out), fetched in one
    batch: s3fs sends the GETs concurrently, where a loop of ``exists`` and ``open`` would
    send a HEAD and a GET per file, one after another (hundreds a day for a feature window)."""
    if not uris:
        return {}
    fs, _ = filesystem(uris[0], options)
    paths = {fs._strip_protocol(uri): uri for uri in uris}
    found = fs.cat(list(paths), on_error="omit")
    return {paths[path]: data for path, data in found.items()}


def upload_changed(local_dir: str, uri: str, options: StorageOptions | None = None) -> int:
    """Upload the files of ``local_dir`` whose bytes differ from the copy under ``uri`` (by
    MD5 against the object's ETag, which is the MD5 of a single-part upload), in one batch;
    how many went up. A site of hundreds of pages then costs a listing and the few pages a
    run changed, not a PUT of every page every day."""
    fs, path = fresh_filesystem(uri, options)
    root = path.rstrip("/")
    remote = {}
    if fs.exists(root):
        for name, info in fs.find(root, detail=True).items():
            remote[name] = str(info.get("ETag") or "").strip('"')
    sources, targets = [], []
    for folder, _, names in os.walk(local_dir):
        for name in names:
            local = os.path.join(folder, name)
            target = f"{root}/{os.path.relpath(local, local_dir)}"
            with open(local, "rb") as handle:
                digest = hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()
            if remote.get(target) != digest:
                sources.append(local)
                targets.append(target)
    if sources:
        fs.put(sources, targets)
    return len(sources)
