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

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bkind_model.io.frame_index import cache_dir as default_cache_dir
from bkind_model.io.frame_index import cache_stem, remove_stale
from bkind_model.io.video import VideoSource

_CACHE_VERSION = 1
_BUILD_CHUNK = 64
#: Progress callback: ``f(frames_done, frames_total, message)``.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class FrameGeometry:
    """Where a source frame lies inside a cached frame.

    The source frame is resized to ``content`` and placed at ``pad`` inside a black
    frame of ``size``. Coordinates are in pixels with the centre of the top-left pixel
    at ``(0, 0)`` (as in napari and DeepLabCut).

    Attributes
    ----------
    source_size : tuple of int
        ``(height, width)`` of the source frames.
    size : tuple of int
        ``(height, width)`` of the cached frames.
    content : tuple of int
        ``(height, width)`` of the resized source inside a cached frame.
    pad : tuple of int
        ``(top, left)``: rows above and columns left of the content.
    """

    source_size: tuple[int, int]
    size: tuple[int, int]
    content: tuple[int, int]
    pad: tuple[int, int]

    @classmethod
    def fit(cls, source_size: tuple[int, int], size: int | tuple[int, int]) -> FrameGeometry:
        """Scale a frame keeping its aspect ratio.

        Parameters
        ----------
        source_size : tuple of int
            ``(height, width)`` of the source frames.
        size : int or tuple of int
            An int is the length of the longer side (no padding). A ``(height, width)``
            is the exact cached size: the frame is scaled to fit inside and centred on
            black (letterboxed); when its aspect ratio matches within a pixel of
            rounding, it fills the size exactly.
        """
        height, width = source_size
        if isinstance(size, int | np.integer):
            scale = int(size) / max(height, width)
            content = (max(1, round(height * scale)), max(1, round(width * scale)))
            return cls(source_size, content, content, (0, 0))
        target = (int(size[0]), int(size[1]))
        scale = min(target[0] / height, target[1] / width)
        exact = (height * scale, width * scale)
        content = tuple(
            side if abs(side - fitted) <= 1 else round(fitted)
            for side, fitted in zip(target, exact, strict=True)
        )
        pad = ((target[0] - content[0]) // 2, (target[1] - content[1]) // 2)
        return cls(source_size, target, content, pad)

    @property
    def scale(self) -> tuple[float, float]:
        """``(y, x)`` cached pixels per source pixel."""
        return (
            self.content[0] / self.source_size[0],
            self.content[1] / self.source_size[1],
        )

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` points ``(x, y)`` from cached to source pixel coordinates."""
        scale_xy = np.array(self.scale[::-1])
        offset_xy = np.array(self.pad[::-1])
        return (np.asarray(points, float) - offset_xy + 0.5) / scale_xy - 0.5

    def to_cache(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` points ``(x, y)`` from source to cached pixel coordinates."""
        scale_xy = np.array(self.scale[::-1])
        offset_xy = np.array(self.pad[::-1])
        return (np.asarray(points, float) + 0.5) * scale_xy - 0.5 + offset_xy


class FrameCache:
    """All frames of a source at training resolution, memory-mapped from disk.

    Create it with :meth:`build`. Reading is thread-safe.

    Attributes
    ----------
    path : Path
        The ``.npy`` file.
    geometry : FrameGeometry
        How source frames were resized into cached frames.
    frames : numpy.memmap
        ``(N, h, w, 3)`` uint8 RGB, read-only.
    """

    def __init__(self, path: Path, geometry: FrameGeometry) -> None:
        self.path = path
        self.geometry = geometry
        self.frames = np.load(path, mmap_mode="r")

    @classmethod
    def build(
        cls,
        source: VideoSource,
        size: int | tuple[int, int],
        *,
        cache_dir: str | Path | None = None,
        progress: Progress | None = None,
    ) -> FrameCache:
        """The cache of ``source`` at ``size``: reopened when it exists, else built.

        Parameters
        ----------
        source : VideoSource
            The video or image folder.
        size : int or tuple of int
            Longer side in pixels, or exact ``(height, width)``; see
            :meth:`FrameGeometry.fit`.
        cache_dir : str or Path, optional
            Folder of cache files; ``cache_dir("frames")`` of
            :mod:`bkind_model.io.frame_index` by default.
        progress : callable, optional
            ``f(frames_done, frames_total, message)``, called after each batch.

        Returns
        -------
        FrameCache
        """
        geometry = FrameGeometry.fit((source.height, source.width), size)
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir("frames")
        stem = cache_stem(source.path, source.signature, _CACHE_VERSION, geometry)
        path = directory / f"{stem}.npy"
        shape = (source.n_frames, *geometry.size, 3)
        message = f"Caching frames of {source.path.name}"
        if _is_complete(path, shape):
            if progress is not None:
                progress(source.n_frames, source.n_frames, message)
        else:
            directory.mkdir(parents=True, exist_ok=True)
            _write_frames(source, geometry, path, progress, message)
            remove_stale(directory, stem, ".npy")
        return cls(path, geometry)

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
    geometry: FrameGeometry,
    path: Path,
    progress: Progress | None,
    message: str,
) -> None:
    """Stream, resize and append every frame to a ``.npy`` file, then rename it."""
    shape = (source.n_frames, *geometry.size, 3)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8))}
    header |= {"fortran_order": False, "shape": shape}
    try:
        with tmp.open("wb") as file:
            np.lib.format.write_array_header_2_0(file, header)
            for start, frames in source.iter_chunks(chunk=_BUILD_CHUNK):
                resize_frames(frames, geometry).tofile(file)
                if progress is not None:
                    progress(start + len(frames), source.n_frames, message)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def resize_frames(frames: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Resize ``(n, H, W, 3)`` uint8 frames into ``(n, h, w, 3)`` cached frames.

    Bilinear with antialiasing (torch's uint8 fast path), then padded with black.
    """
    if geometry.content == geometry.source_size and geometry.size == geometry.content:
        return frames
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = F.interpolate(
        tensor, size=geometry.content, mode="bilinear", antialias=True, align_corners=False
    )
    out = np.zeros((len(frames), *geometry.size, 3), np.uint8)
    top, left = geometry.pad
    out[:, top : top + geometry.content[0], left : left + geometry.content[1]] = resized.permute(
        0, 2, 3, 1
    ).numpy()
    return out
