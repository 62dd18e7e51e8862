"""A process that publishes one partition and is stopped at a chosen step of it.

Run as ``python -m tests.support.publisher URI FILES_JSON OPTIONS_JSON MODE STEP``: it
publishes the files (``{name: text}``) to ``URI`` with ``mlops.io.partitions`` and, just
before its ``STEP``-th write (counted from 0: each data file, the manifest, the renames, the
marker, the cleanup), either SIGKILLs itself (``kill``: no handler, no ``finally`` runs) or
prints ``holding`` and sleeps (``hold``: a live writer in the middle of a publish). A step
past the last lets the publish finish. Steps, locally: every ``write_file`` and
``os.replace`` and the stale-entry cleanup; on S3: every object PUT and the cleanup's
delete.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

HOLD_S = 60  # bounded: the test kills the holder long before


def stop_before(step: int, mode: str, wrapped: Any) -> Any:
    """``wrapped`` counting its calls in a shared counter, stopping before call ``step``."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        _checkpoint(step, mode)
        return wrapped(*args, **kwargs)

    return counted


def stop_before_async(step: int, mode: str, wrapped: Any) -> Any:
    async def counted(*args: Any, **kwargs: Any) -> Any:
        _checkpoint(step, mode)
        return await wrapped(*args, **kwargs)

    return counted


CALLS = [0]


def _checkpoint(step: int, mode: str) -> None:
    if CALLS[0] == step:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("holding", flush=True)
        time.sleep(HOLD_S)
    CALLS[0] += 1


def main(uri: str, files_json: str, options_json: str, mode: str, step: int) -> None:
    from mlops.io import partitions

    if uri.startswith("s3://"):
        import s3fs

        for name in ("_pipe_file", "_rm"):
            original = getattr(s3fs.S3FileSystem, name)
            setattr(s3fs.S3FileSystem, name, stop_before_async(step, mode, original))
    else:
        partitions.write_file = stop_before(step, mode, partitions.write_file)
        os.replace = stop_before(step, mode, os.replace)
        original_cleanup = partitions._remove_stale_local
        partitions._remove_stale_local = stop_before(step, mode, original_cleanup)
    files = {name: text.encode() for name, text in json.loads(files_json).items()}
    partitions.publish_partition(uri, files, {"rows": len(files)}, json.loads(options_json))
    print(f"published after {CALLS[0]} steps", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
