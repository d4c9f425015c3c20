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
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bkind_model.frames.letterbox import resize_frames
from bkind_model.io.atomic import atomic_path, ensure_folder, require_free
from bkind_model.io.frame_index import cache_dir as default_cache_dir
from bkind_model.io.frame_index import cache_stem, remove_stale
from bkind_model.io.video import VideoSource

_CACHE_VERSION = 2
_BUILD_CHUNK = 64
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
            if progress is not None:
                progress(source.n_frames, source.n_frames, message)
        else:
            ensure_folder(directory, "frame cache folder")  # removes caches killed midway
            _write_frames(source, size, path, progress, message)
            remove_stale(directory, stem, ".npy")
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
        for start, frames in source.iter_chunks(chunk=_BUILD_CHUNK):
            resize_frames(frames, size).tofile(file)
            if progress is not None:
                progress(start + len(frames), source.n_frames, message)
