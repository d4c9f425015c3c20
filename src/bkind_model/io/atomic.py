"""Atomic writes: a file appears whole under its name, or not at all.

Every file the engine writes (checkpoints, results, exports, frame caches and indexes,
videos, masks) is written to a temporary name beside its target, flushed to disk and
renamed over the target with :func:`os.replace`, which is atomic on one filesystem. An
interrupted write leaves the previous file intact and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A hidden name beside ``path``, unique to this process and thread.

    Parameters
    ----------
    path : Path
        The target file.
    suffix : str
        Appended to the name, for writers that choose a format by extension
        (e.g. ``".mp4"``, ``".png"``).
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; on success it is synced and renamed to ``path``.

    Parameters
    ----------
    path : str or Path
        The target file; its folder must exist.
    suffix : str
        Extension the temporary name ends with (see :func:`temporary_path`).

    Yields
    ------
    Path
        Where to write. If the block raises, the temporary file is removed and ``path``
        keeps its previous content.

    Examples
    --------
    >>> with atomic_path(out / "results.h5") as tmp:  # doctest: +SKIP
    ...     write_file(tmp)
    """
    target = Path(path)
    tmp = temporary_path(target, suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the data reaches the disk before the rename
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
