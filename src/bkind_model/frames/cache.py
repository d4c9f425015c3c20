"""Frames decoded once, resized to training resolution, in a disk-backed array.

Training samples random frames and frame pairs thousands of times; decoding them from
the video each time would dominate. :meth:`FrameCache.build` streams the video once
(:meth:`~bkind_model.io.video.VideoSource.iter_chunks`, never the whole video in
memory), resizes each batch and appends it to a ``.npy`` file, which is then read as a
memory map: random reads run at memory speed once the file is in the page cache, and
videos larger than RAM work.

The file is written under a temporary name and renamed when complete, so an interrupted
build leaves no half-written cache. It lives in :func:`~bkind_model.io.frame_index.cache_dir`
``("frames")`` unless told otherwise, keyed by the source's signature (path, size,
modification time) and the target size: a changed video gets a new cache and the stale
one is deleted.

The frame caches of a folder are kept under :func:`max_cache_bytes`
(``BKIND_CACHE_MAX_GB``, 5 GB by default): before a cache is written, the least recently
used others are deleted until it fits, never one this process has open. A cache's
modification time is its last use (reopening it touches it). :func:`cache_usage` and
:func:`clear_cache` are what ``bkind cache info`` and ``bkind cache clear`` show and do,
for the frame caches and the frame indexes (:mod:`bkind_model.io.frame_index`) alike.
"""

from __future__ import annotations

import math
import os
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bkind_model.errors import ConfigError
from bkind_model.frames.letterbox import resize_frames
from bkind_model.io.atomic import atomic_path, ensure_folder, require_free
from bkind_model.io.frame_index import cache_dir as default_cache_dir
from bkind_model.io.frame_index import cache_stem, remove_stale
from bkind_model.io.video import VideoSource

_CACHE_VERSION = 2
#: Frames decoded and resized at once while building: at most 64, and at most
#: :data:`_BUILD_BYTES` of full-size frames (a 4000x4000 frame is 48 MB).
_BUILD_CHUNK = 64
_BUILD_BYTES = 64 * 2**20
#: Environment variable capping the frame caches of a folder, in GB (10**9 bytes).
MAX_GB_ENV = "BKIND_CACHE_MAX_GB"
DEFAULT_MAX_GB = 5.0
#: The cached kinds: sub-folders of the cache folder (``.npy`` frames, ``.npz`` indexes).
KINDS = ("frames", "index")
#: Names of finished entries (``cache_stem`` + suffix); temporary files never match.
_ENTRY = re.compile(r"[0-9a-f]{20}-[0-9a-f]{20}\.np[yz]")
#: Frame caches open in this process: never evicted.
_OPEN: weakref.WeakSet[FrameCache] = weakref.WeakSet()
#: Progress callback: ``f(frames_done, frames_total, message)``.
Progress = Callable[[int, int, str], None]


class FrameCache:
    """All frames of a source at training resolution, memory-mapped from disk.

    Create it with :meth:`build`. Reading is thread-safe.

    Attributes
    ----------
    path : Path
        The ``.npy`` file.
    size : tuple of int
        ``(h, w)`` of the cached frames, pixels.
    frames : numpy.memmap
        ``(N, h, w, 3)`` uint8 RGB, read-only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = np.load(path, mmap_mode="r")
        _OPEN.add(self)

    @classmethod
    def build(
        cls,
        source: VideoSource,
        size: tuple[int, int],
        *,
        cache_dir: str | Path | None = None,
        progress: Progress | None = None,
    ) -> FrameCache:
        """The cache of ``source`` at ``size``: reopened when it exists, else built.

        Parameters
        ----------
        source : VideoSource
            The video or image folder.
        size : tuple of int
            ``(h, w)`` of the cached frames, pixels (e.g. :attr:`Letterbox.resized_size
            <bkind_model.frames.letterbox.Letterbox.resized_size>`); frames are resized to
            it with :func:`~bkind_model.frames.letterbox.resize_frames`.
        cache_dir : str or Path, optional
            Folder of cache files; ``cache_dir("frames")`` of
            :mod:`bkind_model.io.frame_index` by default.
        progress : callable, optional
            ``f(frames_done, frames_total, message)``, called after each batch.

        Returns
        -------
        FrameCache
        """
        size = (int(size[0]), int(size[1]))
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir("frames")
        stem = cache_stem(source.path, source.signature, _CACHE_VERSION, size)
        path = directory / f"{stem}.npy"
        shape = (source.n_frames, *size, 3)
        message = f"Caching frames of {source.path.name}"
        if _is_complete(path, shape):
            os.utime(path)  # its last use, for the least-recently-used eviction
            if progress is not None:
                progress(source.n_frames, source.n_frames, message)
        else:
            ensure_folder(directory, "frame cache folder")  # removes caches killed midway
            remove_stale(directory, stem, ".npy")
            make_room(directory, int(np.prod(shape)))
            _write_frames(source, size, path, progress, message)
        return cls(path)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, h, w, 3)``."""
        return self.frames.shape

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        """Frames by index, e.g. ``cache[np.array([3, 17, 4])]`` -> ``(3, h, w, 3)``."""
        return np.asarray(self.frames[key])


def _is_complete(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether ``path`` is a finished cache of ``shape`` (renamed only when complete)."""
    try:
        frames = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return frames.shape == shape and frames.dtype == np.uint8


def _write_frames(
    source: VideoSource,
    size: tuple[int, int],
    path: Path,
    progress: Progress | None,
    message: str,
) -> None:
    """Stream, resize and append every frame to a ``.npy`` file, then rename it."""
    shape = (source.n_frames, *size, 3)
    require_free(path, float(np.prod(shape)) / 2**20)
    header: dict[str, object] = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8))}
    header |= {"fortran_order": False, "shape": shape}
    with atomic_path(path, suffix=".npy") as tmp, tmp.open("wb") as file:
        np.lib.format.write_array_header_2_0(file, header)
        chunk = min(_BUILD_CHUNK, max(1, _BUILD_BYTES // (source.height * source.width * 3)))
        for start, frames in source.iter_chunks(chunk=chunk):
            resize_frames(frames, size).tofile(file)
            if progress is not None:
                progress(start + len(frames), source.n_frames, message)


@dataclass(frozen=True)
class CacheEntry:
    """One finished file of the cache.

    Attributes
    ----------
    path : Path
        The file.
    size : int
        Its size, bytes.
    last_used : float
        Its last use (modification time), seconds since the epoch.
    """

    path: Path
    size: int
    last_used: float


def cache_entries(directory: Path) -> list[CacheEntry]:
    """The finished cache files in ``directory``, least recently used first."""
    entries = []
    for path in directory.glob("*.np[yz]") if directory.is_dir() else ():
        if _ENTRY.fullmatch(path.name):
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile by another process
                continue
            entries.append(CacheEntry(path, stat.st_size, stat.st_mtime))
    return sorted(entries, key=lambda entry: entry.last_used)


def max_cache_bytes() -> float:
    """The cap on a folder's frame caches, bytes: ``BKIND_CACHE_MAX_GB`` or 5 GB.

    Raises
    ------
    ConfigError
        When the variable is not a number of GB, 0 or more (``inf``: no cap).
    """
    text = os.environ.get(MAX_GB_ENV)
    if text is None:
        return DEFAULT_MAX_GB * 1e9
    try:
        gigabytes = float(text)
    except ValueError:
        gigabytes = math.nan
    if not gigabytes >= 0:
        raise ConfigError(
            f"{MAX_GB_ENV}={text!r} is not a size in GB (0 or more, inf for no cap); set it "
            f"to e.g. {DEFAULT_MAX_GB:g} or unset it."
        )
    return gigabytes * 1e9


def make_room(directory: Path, needed: int) -> list[Path]:
    """Delete the least recently used frame caches until ``needed`` more bytes fit the cap.

    Caches open in this process are kept, even when they alone pass the cap.

    Parameters
    ----------
    directory : Path
        A folder of frame caches.
    needed : int
        Bytes about to be written there.

    Returns
    -------
    list of Path
        The caches deleted.
    """
    cap = max_cache_bytes()
    entries = [entry for entry in cache_entries(directory) if entry.path.suffix == ".npy"]
    total = needed + sum(entry.size for entry in entries)
    in_use = {cache.path.resolve() for cache in _OPEN}
    removed = []
    for entry in entries:
        if total <= cap:
            break
        if entry.path.resolve() in in_use:
            continue
        entry.path.unlink(missing_ok=True)  # a process reading it keeps its open map
        total -= entry.size
        removed.append(entry.path)
    return removed


def cache_usage() -> dict[str, tuple[int, int]]:
    """Entries and bytes of each kind in the cache folder: ``{kind: (entries, bytes)}``."""
    usage = {}
    for kind in KINDS:
        entries = cache_entries(default_cache_dir(kind))
        usage[kind] = (len(entries), sum(entry.size for entry in entries))
    return usage


def clear_cache(older_than_days: float | None = None) -> tuple[int, int]:
    """Delete the cache folder's entries (frame caches and indexes), or the old ones.

    Parameters
    ----------
    older_than_days : float, optional
        Only entries not used for this many days; all when None. Caches open in this
        process are kept.

    Returns
    -------
    removed : int
        Entries deleted.
    freed : int
        Bytes freed.
    """
    newest = math.inf if older_than_days is None else time.time() - older_than_days * 86400
    in_use = {cache.path.resolve() for cache in _OPEN}
    removed = freed = 0
    for kind in KINDS:
        for entry in cache_entries(default_cache_dir(kind)):
            if entry.last_used < newest and entry.path.resolve() not in in_use:
                entry.path.unlink(missing_ok=True)
                removed, freed = removed + 1, freed + entry.size
    return removed, freed
