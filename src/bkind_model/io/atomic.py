"""Atomic writes: a file appears whole under its name, or not at all.

Every file the engine writes (checkpoints, results, exports, frame caches and indexes,
videos, masks) goes through :func:`atomic_path`: it is written under a temporary name
beside its target, every write is checked, the data is flushed to disk, and only then is
it renamed over the target with :func:`os.replace` (atomic on one filesystem). When
anything fails, the temporary file is removed, the previous file at the target is intact,
and the error says so (:class:`~bkind_model.errors.DiskFullError` for a full disk). A
process killed mid-write leaves its temporary file behind; :func:`remove_orphans` deletes
those of dead processes on the next run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from bkind_model.errors import BKindError, DiskFullError, WriteError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: ``.<name>.<pid>.<thread>.tmp[suffix]``: the temporary names of :func:`temporary_path`.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<thread>\d+)\.tmp(\.\w+)?$")


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


def free_mb(folder: str | Path) -> float:
    """Free space of the filesystem holding ``folder``, MiB (0 when it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free / 2**20
    except OSError:
        return 0.0


def require_free(path: str | Path, needed_mb: float, margin_mb: float = 2.0) -> None:
    """Refuse to start writing ``path`` when its disk lacks ``needed_mb`` (plus a margin).

    Checked before writing, not after failing: HDF5 in particular is left in a state that
    crashes the process at exit when a disk fills under it.

    Raises
    ------
    DiskFullError
        Saying how much to free.
    """
    target = Path(path)
    free = free_mb(target.parent)
    if free < needed_mb + margin_mb:
        raise DiskFullError(
            target,
            "disk full",
            f"free {max(1.0, needed_mb + margin_mb - free):.0f} MB and rerun (writing it needs "
            f"about {needed_mb:.1f} MB); the previous file is intact.",
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (from the OS, h5py, torch or ffmpeg) means the disk is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return True
        text = str(exc)
        if "No space left" in text or "errno = 28" in text or "Disk quota" in text:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def write_failed(path: Path, exc: BaseException, written_mb: float = 0.0) -> WriteError:
    """The error to raise when writing ``path`` failed with ``exc``.

    Parameters
    ----------
    path : Path
        The file being written.
    exc : BaseException
        What the writer raised.
    written_mb : float
        MiB written before the failure: a full disk needs at least that much freed.
    """
    if is_disk_full(exc):
        return DiskFullError(
            path,
            "disk full",
            f"free {max(1.0, written_mb - free_mb(path.parent)):.0f} MB or more and rerun; "
            "the previous file is intact.",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return WriteError(
        path,
        f"could not write ({reason.splitlines()[0][:200] if reason else type(exc).__name__})",
        "check the folder's permissions and free space, then rerun; the previous file is intact.",
    )


def ensure_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Make ``folder`` (and its parents), check it is writable, remove orphans there.

    Orphans are the temporary files killed processes left (:func:`remove_orphans`).

    Raises
    ------
    WriteError
        When it cannot be made or written to, with the reason and the fix.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / ".bkind-write-test") as probe:
            probe.write_bytes(b"ok")
        (folder / ".bkind-write-test").unlink()
    except DiskFullError as exc:
        raise DiskFullError(
            folder, "disk full", "free some space and rerun; the previous files are intact."
        ) from exc
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(
            folder,
            f"cannot use this {what} ({exc.strerror or exc})",
            "choose a folder you can write to (not under a file, not read-only).",
        ) from exc
    remove_orphans(folder)
    return folder


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

    Raises
    ------
    DiskFullError
        When the disk fills while writing, syncing or renaming.
    WriteError
        For any other failure of the operating system to write the file.

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
    except BKindError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or is_disk_full(exc):
            written = tmp.stat().st_size / 2**20 if tmp.exists() else 0.0
            raise write_failed(target, exc, written) from exc
        raise
    finally:
        with contextlib.suppress(OSError):  # e.g. the "folder" is a file: the error above says so
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete temporary files that killed processes left in ``folder``.

    Only names made by :func:`temporary_path` whose process is gone are removed.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed
