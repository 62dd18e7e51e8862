"""Day partitions published atomically, locally and on S3 alike, and read through their marker.

A partition ``<zone>/date=D`` is published as a version: the data files and then the
manifest (files, sizes, SHA-256, the caller's metadata) under ``date=D/v=<version>/``, and
last the marker ``date=D/_SUCCESS``, whose content names the version. Readers resolve a day
through its marker (``read_partition``, ``partition_files``) and never list or glob the day
folder, so a crash at any point leaves the old version or the new one visible, never a mix:
nothing a reader follows changes until the marker does, and the marker is one atomic PUT on
S3 and one ``os.replace`` locally. Versions the marker no longer names are removed after the
switch (best effort, bounded), never before; a reader still holding one then fails to find
its files (and may retry), it never reads a mix.

The version is the SHA-256 of the manifest (16 hex digits), so a rerun that computes the same
files writes the same bytes under the same name (and, when the marker already names it,
writes nothing). A marker with no content is the layout before versions (files beside the
marker); it is still read, and the next publish of that day replaces it.

Locally a writer holds the partition's lock (``mlops.io.locks``) for the whole publish, so a
second writer of the same partition is refused with ``PartitionLockedError`` naming it. On S3
there is no lock: one writer per partition is the scheduler's job (one task instance a day).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.io import storage
from mlops.io.locks import LOCK, PartitionLockedError, partition_lock
from mlops.schema import MANIFEST, SUCCESS_MARKER

VERSION_PREFIX = "v="
CLEANUP_LIMIT = 32  # stale entries removed per publish at most; the next publish does the rest
RESOLVE_TRIES = 3  # a marker may move between reading it and reading its manifest


class PartitionError(RuntimeError):
    """A partition's marker names a version that cannot be read."""


@dataclass(frozen=True)
class Partition:
    """One published version of a day partition, as its marker named it when read."""

    uri: str  # the day folder, ``<zone>/date=D``
    version: str  # "" for the layout before versions (files beside the marker)
    manifest: dict[str, Any]

    @property
    def folder(self) -> str:
        """Where this version's files are."""
        return storage.join(self.uri, VERSION_PREFIX + self.version) if self.version else self.uri

    def file(self, name: str) -> str:
        if name not in self.manifest.get("files", {}):
            raise FileNotFoundError(f"{self.uri}: version {self.version!r} has no file {name}")
        return storage.join(self.folder, name)

    @property
    def files(self) -> list[str]:
        """The URIs of the version's data files, sorted by name."""
        return [storage.join(self.folder, name) for name in sorted(self.manifest.get("files", {}))]


def manifest_bytes(
    files: Mapping[str, bytes],
    metadata: Mapping[str, Any] | None = None,
    digests: Mapping[str, str] | None = None,
) -> bytes:
    known = digests or {}
    manifest = {
        "files": {
            name: {"sha256": known.get(name) or storage.sha256(data), "bytes": len(data)}
            for name, data in files.items()
        },
        **dict(metadata or {}),
    }
    return storage.json_bytes(manifest)


def version_of(manifest: bytes) -> str:
    """The version a manifest publishes under: its content, so equal content, equal name."""
    return storage.sha256(manifest)[:16]


def marker_bytes(version: str) -> bytes:
    return storage.json_bytes(
        {"version": version, "manifest": f"{VERSION_PREFIX}{version}/{MANIFEST}"}
    )


def _marker_version(data: bytes) -> str:
    return str(json.loads(data)["version"]) if data.strip() else ""


# -- writing ---------------------------------------------------------------------------------


def publish_partition(
    uri: str,
    files: Mapping[str, bytes],
    metadata: Mapping[str, Any] | None = None,
    options: storage.StorageOptions | None = None,
    digests: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Make ``files`` (with a manifest holding ``metadata``) the visible version of ``uri``.

    ``digests`` gives the SHA-256 of files the caller has hashed already (a landing file is
    hashed for the lineage too; a second pass over its bytes would cost as much again)."""
    manifest = manifest_bytes(files, metadata, digests)
    version = version_of(manifest)
    if storage.is_remote(uri):
        _publish_remote(uri, version, files, manifest, options)
    else:
        with partition_lock(uri):
            _publish_local(uri, version, files, manifest)
    return json.loads(manifest)


def withdraw_partition(uri: str, options: storage.StorageOptions | None = None) -> bool:
    """Unpublish ``uri``: the marker goes first (readers then see no partition), then the
    rest. True when there was something to remove."""
    if storage.is_remote(uri):
        return storage.remove(storage.join(uri, SUCCESS_MARKER), options) | storage.remove(
            uri, options
        )
    if not os.path.isdir(uri):
        return False
    with partition_lock(uri):
        marker = os.path.join(uri, SUCCESS_MARKER)
        if os.path.exists(marker):
            os.remove(marker)
            _fsync_dir(uri)
        _remove_stale_local(uri, keep=(LOCK,), limit=None)
    try:
        os.rmdir(uri)
    except OSError:
        pass  # another writer came in meanwhile: its partition stays
    return True


def _publish_remote(
    uri: str,
    version: str,
    files: Mapping[str, bytes],
    manifest: bytes,
    options: storage.StorageOptions | None,
) -> None:
    fs, path = storage.fresh_filesystem(uri, options)
    current = read_partition(uri, options)
    if current is None or current.version != version:
        folder = f"{path}/{VERSION_PREFIX}{version}"
        if files:
            fs.pipe({f"{folder}/{name}": data for name, data in files.items()})
        fs.pipe_file(f"{folder}/{MANIFEST}", manifest)
        fs.pipe_file(f"{path}/{SUCCESS_MARKER}", marker_bytes(version))
    _remove_stale_remote(fs, path, version)


def _remove_stale_remote(fs: Any, path: str, version: str) -> None:
    """Remove what the marker does not name (older versions, the layout before versions,
    leftovers of a crashed attempt): best effort, at most ``CLEANUP_LIMIT`` entries."""
    keep = {SUCCESS_MARKER, f"{VERSION_PREFIX}{version}"}
    try:
        fs.invalidate_cache(path)
        stale = [e for e in fs.ls(path) if e.rstrip("/").rsplit("/", 1)[-1] not in keep]
        if stale:
            fs.rm(stale[:CLEANUP_LIMIT], recursive=True)
    except OSError:
        pass  # the next publish of the day retries; readers never look at these


def _publish_local(path: str, version: str, files: Mapping[str, bytes], manifest: bytes) -> None:
    current = read_partition(path)
    if current is None or current.version != version:
        final = os.path.join(path, VERSION_PREFIX + version)
        staging = os.path.join(path, f".{VERSION_PREFIX}{version}.tmp-{uuid.uuid4().hex}")
        os.makedirs(staging)
        for name, data in {**files, MANIFEST: manifest}.items():
            write_file(os.path.join(staging, name), data)
        _fsync_dir(staging)
        if os.path.exists(final):  # a crashed attempt's copy; the marker does not name it
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_dir(path)
        storage.write_bytes_atomic(os.path.join(path, SUCCESS_MARKER), marker_bytes(version))
        _fsync_dir(path)
    _remove_stale_local(path, keep=(SUCCESS_MARKER, LOCK, VERSION_PREFIX + version))


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_local(
    path: str, keep: tuple[str, ...], limit: int | None = CLEANUP_LIMIT
) -> None:
    stale = sorted(name for name in os.listdir(path) if name not in keep)
    for name in stale[:limit]:
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            try:
                os.remove(target)
            except FileNotFoundError:
                pass


# -- reading ---------------------------------------------------------------------------------


def read_partitions(
    uris: list[str], options: storage.StorageOptions | None = None
) -> dict[str, Partition | None]:
    """The visible version of each partition (None when not published), in two batches:
    the markers, then the manifests they name (``storage.read_many``)."""
    result: dict[str, Partition | None] = dict.fromkeys(uris)
    pending = list(uris)
    for _ in range(RESOLVE_TRIES):
        markers = storage.read_many([storage.join(u, SUCCESS_MARKER) for u in pending], options)
        versions = {}
        for uri in pending:
            data = markers.get(storage.join(uri, SUCCESS_MARKER))
            if data is not None:
                versions[uri] = _marker_version(data)
        manifest_uris = {uri: _manifest_uri(uri, v) for uri, v in versions.items()}
        found = storage.read_many(list(manifest_uris.values()), options)
        pending = []
        for uri, manifest_uri in manifest_uris.items():
            if manifest_uri in found:
                result[uri] = Partition(uri, versions[uri], json.loads(found[manifest_uri]))
            else:
                pending.append(uri)  # the marker moved on and the old version went: again
        if not pending:
            return result
    raise PartitionError(
        f"partition(s) {', '.join(pending)}: the marker names a version whose manifest is "
        "missing; a writer may be replacing them, retry, else republish the day"
    )


def _manifest_uri(uri: str, version: str) -> str:
    if not version:
        return storage.join(uri, MANIFEST)
    return storage.join(uri, VERSION_PREFIX + version, MANIFEST)


def read_partition(uri: str, options: storage.StorageOptions | None = None) -> Partition | None:
    return read_partitions([uri], options)[uri]


def read_manifest(uri: str, options: storage.StorageOptions | None = None) -> dict[str, Any] | None:
    """The visible version's manifest, or None when the partition was never published."""
    found = read_partition(uri, options)
    return found.manifest if found else None


def read_manifests(
    uris: list[str], options: storage.StorageOptions | None = None
) -> dict[str, dict[str, Any] | None]:
    return {uri: p.manifest if p else None for uri, p in read_partitions(uris, options).items()}


def partition_files(uri: str, options: storage.StorageOptions | None = None) -> list[str]:
    """The data files of the visible version of ``uri``, sorted by name ([] if unpublished)."""
    found = read_partition(uri, options)
    return found.files if found else []


def require_partition(uri: str, options: storage.StorageOptions | None = None) -> Partition:
    found = read_partition(uri, options)
    if found is None:
        raise FileNotFoundError(f"{uri}: partition not published (no {SUCCESS_MARKER} marker)")
    return found


def version_folders(
    root: str, options: storage.StorageOptions | None = None
) -> dict[str, set[str]]:
    """Per day folder name (``date=D``) under ``root`` (a zone), the versions present, from one
    listing: what a glob over ``date=*/v=*`` (Feast's file sources) would see."""
    fs, path = storage.fresh_filesystem(root, options)
    found: dict[str, set[str]] = {}
    for entry in fs.glob(f"{path.rstrip('/')}/date=*/{VERSION_PREFIX}*"):
        day_folder, name = entry.rstrip("/").rsplit("/", 2)[-2:]
        found.setdefault(day_folder, set()).add(name.removeprefix(VERSION_PREFIX))
    return found


__all__ = [
    "Partition",
    "PartitionError",
    "PartitionLockedError",
    "partition_files",
    "publish_partition",
    "read_manifest",
    "read_manifests",
    "read_partition",
    "read_partitions",
    "require_partition",
    "version_folders",
    "withdraw_partition",
]
