"""Where a published partition's files are: the version its ``_SUCCESS`` marker names."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def published(folder: Path | str, options: Any = None) -> Path | str:
    """The version folder of the partition ``folder`` (a Path for a Path, else a URI)."""
    from mlops.io.partitions import require_partition

    found = require_partition(str(folder), options).folder
    return Path(found) if isinstance(folder, Path) else found
