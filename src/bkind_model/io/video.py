"""Lazy, frame-exact access to a video file or a folder of images.

:func:`open_video` returns a :class:`VideoSource` whatever the input. Frames come out as
``(H, W, 3)`` uint8 RGB; grayscale sources give three equal channels.

Frame exactness
    Frame ``i`` read at random is the same image as frame ``i`` of a sequential decode,
    also for H.264 with B-frames and keyframes far apart: every file gets a
    :class:`~bkind_model.io.frame_index.FrameIndex` (exact presentation time of every
    frame), and a decoder starting at frame ``i`` seeks to the presentation time of
    frame ``i`` (:meth:`~bkind_model.io.frame_index.FrameIndex.seek_time`) with ffmpeg's
    accurate seek and passthrough frame-rate mode (frames are never duplicated or
    dropped). Files whose container does not seek exactly are decoded from frame 0.

Decoders
    A read starts ffmpeg at the first requested frame and keeps it running afterwards
    (at most ``max_decoders`` idle per source, each a separate ffmpeg process), so a
    read that continues where an earlier one stopped (stepping forward) reuses the
    running decoder instead of seeking again.

Memory
    :attr:`VideoSource.frames` is a dask array whose chunks are runs of
    ``chunk_frames`` frames, each decoded in one ffmpeg pass. Decoded chunks are kept in
    an LRU cache of at most ``cache_bytes`` (256 MiB by default, at least one chunk).
    Beyond that a source holds the frames of reads in flight, an 8-frame conversion
    buffer per decoder and the index (8 bytes per frame).

Threads
    A :class:`VideoSource` may be read from several threads at once (dask workers,
    napari's slicing thread).
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bkind_model.errors import TruncatedVideoError
from bkind_model.io.ffmpeg import FFmpegProcess, check_readable
from bkind_model.io.frame_index import FrameIndex, file_signature, load_frame_index

if TYPE_CHECKING:
    import dask.array as da
from bkind_model.io.image_folder import ImageFolderReader

DEFAULT_CHUNK_FRAMES = 16
DEFAULT_CACHE_BYTES = 256 * 2**20
DEFAULT_MAX_DECODERS = 2
#: A running decoder skips ahead (decoding and dropping frames) rather than seeking
#: anew when the gap is at most this many frames or at most the distance from the
#: target back to its keyframe (which a new decoder would have to decode anyway).
_MAX_SKIP_FRAMES = 32
#: Frames converted per block when reading: the size of each decoder's planar buffer.
_BLOCK_FRAMES = 8
#: Seconds of stall timeout granted per frame ffmpeg decodes silently after a seek
#: (from the keyframe up to the target), on top of ``ffmpeg.TIMEOUT_S``.
_SEEK_SECONDS_PER_FRAME = 0.05


#: Frame rates (frames/s) a recording can have; outside them the container is wrong.
PLAUSIBLE_FPS = (1.0, 5000.0)
#: The rate assumed when a video states none (or an impossible one).
ASSUMED_FPS = 30.0


def plausible_fps(path: Path, fps: float | None) -> tuple[float, bool]:
    """The frame rate to use for a video and whether it is assumed.

    A rate that is missing, not finite or outside :data:`PLAUSIBLE_FPS` (a container
    written with wrong timestamps) is replaced by :data:`ASSUMED_FPS`, with a warning
    that names the file and the fix: durations in seconds (a frame gap in seconds, say)
    would otherwise be wrong by the same factor.

    Returns
    -------
    fps : float
        Frames per second.
    assumed : bool
        True when ``fps`` is :data:`ASSUMED_FPS` instead of the file's rate.
    """
    low, high = PLAUSIBLE_FPS
    if fps is not None and math.isfinite(fps) and low <= fps <= high:
        return float(fps), False
    stated = "no frame rate" if fps is None else f"a frame rate of {fps:g} fps"
    warnings.warn(
        f"{path}: the video's timestamps give {stated}; assuming {ASSUMED_FPS:g} fps. Times "
        "in seconds (a frame gap in seconds, the results' fps) use that rate: give the gap in "
        "frames, or rewrite the file with its true rate (ffmpeg -r RATE -i IN -c copy OUT).",
        UserWarning,
        stacklevel=3,
    )
    return ASSUMED_FPS, True


class FrameReader(Protocol):
    """What :class:`VideoSource` needs from a backend (video file, image folder)."""

    path: Path
    n_frames: int
    height: int
    width: int
    fps: float
    fps_assumed: bool
    timestamps: np.ndarray
    signature: str

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` as ``(stop - start, H, W, 3)`` uint8."""
        ...

    def iter_chunks(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """Stream frames ``start`` to ``stop - 1`` in batches of ``chunk`` frames."""
        ...

    def close(self) -> None:
        """Release processes and files."""
        ...


class VideoSource:
    """A video file or image folder as lazily decoded RGB frames.

    Create it with :func:`open_video`. Use it as a context manager or call
    :meth:`close` to stop its decoders.

    Attributes
    ----------
    path : Path
        The video file or image folder.
    n_frames : int
        Exact number of frames ``T``.
    height, width : int
        Frame size in pixels.
    fps : float
        Frame rate in frames per second (average over the video).
    fps_assumed : bool
        True when the source states no frame rate (image folders) and :attr:`fps` is
        the value given to :func:`open_video` or the default of 30.
    chunk_frames : int
        Frames per chunk of :attr:`frames`, decoded in one ffmpeg pass.
    """

    def __init__(
        self,
        reader: FrameReader,
        *,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._reader = reader
        self.path = reader.path
        self.n_frames = reader.n_frames
        self.height = reader.height
        self.width = reader.width
        self.fps = reader.fps
        self.fps_assumed = reader.fps_assumed
        self.chunk_frames = int(chunk_frames)
        chunk_bytes = self.chunk_frames * self.height * self.width * 3
        self._chunks = _ChunkCache(max(1, cache_bytes // chunk_bytes))

    @property
    def frames(self) -> da.Array:
        """``(T, H, W, 3)`` uint8 RGB as a lazy dask array (e.g. for a napari layer).

        Grayscale sources give three equal channels. Chunks are :attr:`chunk_frames`
        frames, served from the source's decoded-chunk cache. The array keeps the source
        alive; the source does not keep the array, so a source nobody refers to stops its
        decoders at once. Each access builds a new array (about a millisecond) over the
        same cache: keep the array when indexing it in a loop.
        """
        import dask.array as da  # here: dask.array brings numba (~100 MB) to every import

        return da.from_array(
            _ChunkedFrames(self),
            chunks=(self.chunk_frames, self.height, self.width, 3),
            name=f"bkind-frames-{self.signature}-{self.chunk_frames}",
            meta=np.empty((0, 0, 0, 0), np.uint8),
            asarray=False,
        )

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 3)``."""
        return (self.n_frames, self.height, self.width, 3)

    @property
    def dtype(self) -> np.dtype:
        """Always uint8."""
        return np.dtype(np.uint8)

    @property
    def timestamps(self) -> np.ndarray:
        """``(T,)`` float64 presentation time of each frame in seconds from the start."""
        return self._reader.timestamps

    @property
    def signature(self) -> str:
        """Hex digest of the source's path, size and modification time(s).

        It changes whenever the file (or an image of the folder) changes, so caches keyed
        by it become stale.
        """
        return self._reader.signature

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, key: int | slice | np.ndarray | list[int]) -> np.ndarray:
        """Decode frames by index.

        Parameters
        ----------
        key : int, slice or array of int
            Frame number(s); negative numbers count from the end.

        Returns
        -------
        ndarray
            ``(H, W, 3)`` uint8 for an int, ``(n, H, W, 3)`` otherwise.
        """
        if isinstance(key, int | np.integer):
            frame = range(self.n_frames)[key]  # IndexError when out of range
            return self.read(frame, frame + 1)[0]
        indices = np.arange(self.n_frames)[key]
        unique, inverse = np.unique(indices, return_inverse=True)
        runs = np.split(unique, np.flatnonzero(np.diff(unique) != 1) + 1)
        parts = [self.read(int(run[0]), int(run[-1]) + 1) for run in runs if len(run)]
        if not parts:
            return np.empty((0, *self.shape[1:]), np.uint8)
        return np.concatenate(parts)[inverse]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Decode the consecutive frames ``start`` to ``stop - 1``.

        Parameters
        ----------
        start, stop : int
            Frame range, ``0 <= start <= stop <= T``.

        Returns
        -------
        ndarray
            ``(stop - start, H, W, 3)`` uint8 RGB, a new array.
        """
        if not 0 <= start <= stop <= self.n_frames:
            raise IndexError(f"frames {start}:{stop} out of range for {self.n_frames} frames")
        if start == stop:
            return np.empty((0, *self.shape[1:]), np.uint8)
        return self._reader.read(start, stop)

    def iter_chunks(
        self, chunk: int = 64, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream the frames in order with a single decoder pass.

        Parameters
        ----------
        chunk : int
            Frames per batch.
        start, stop : int
            Frame range (``stop`` defaults to the end).

        Yields
        ------
        start_index : int
            Frame number of the first frame of the batch.
        frames : ndarray
            ``(n, H, W, 3)`` uint8 RGB, ``n <= chunk``, a new array each time.
        """
        stop = self.n_frames if stop is None else stop
        if not 0 <= start <= stop <= self.n_frames:
            raise IndexError(f"frames {start}:{stop} out of range for {self.n_frames} frames")
        if start < stop:
            yield from self._reader.iter_chunks(start, stop, int(chunk))

    def chunk(self, number: int) -> np.ndarray:
        """Chunk ``number`` of :attr:`frames` (read-only), from the LRU cache or decoded."""
        frames = self._chunks.get(number)
        if frames is None:
            start = number * self.chunk_frames
            frames = self._reader.read(start, min(start + self.chunk_frames, self.n_frames))
            frames.flags.writeable = False
            self._chunks.put(number, frames)
        return frames

    def close(self) -> None:
        """Stop the decoders and drop cached chunks."""
        self._reader.close()
        self._chunks.clear()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        assumed = " (assumed)" if self.fps_assumed else ""
        return (
            f"VideoSource({str(self.path)!r}, n_frames={self.n_frames}, "
            f"size={self.width}x{self.height}, fps={self.fps:g}{assumed})"
        )


def open_video(
    path: str | Path,
    *,
    fps: float | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_decoders: int = DEFAULT_MAX_DECODERS,
    decoder_threads: int = 0,
) -> VideoSource:
    """Open a video file or a folder of images for lazy, frame-exact reading.

    Parameters
    ----------
    path : str or Path
        A video file ffmpeg can read (.mp4, .avi, .mov, .mkv ...) or a folder of images
        (.png, .jpg, .tif ...) in natural order (``img2`` before ``img10``).
    fps : float, optional
        Frame rate of an image folder, which states none (default 30, flagged by
        :attr:`VideoSource.fps_assumed`). Ignored for video files, whose rate comes
        from their timestamps.
    chunk_frames : int
        Frames per chunk of :attr:`VideoSource.frames`.
    cache_bytes : int
        Bound of the decoded-chunk cache in bytes.
    max_decoders : int
        Running ffmpeg decoders kept per video file for continued reads.
    decoder_threads : int
        Threads of each ffmpeg decoder (0: ffmpeg's choice, one per core). A process that
        is one of many on a machine (a dask worker) decodes faster with 1.

    Returns
    -------
    VideoSource

    Raises
    ------
    VideoError
        A specific subclass from :mod:`bkind_model.errors` (missing, unreadable, not a
        video, empty, truncated, inconsistent image sizes, stalled decoder).
    """
    path = Path(path)
    check_readable(path)
    if path.is_dir():
        reader: FrameReader = ImageFolderReader(path, fps=fps)
    else:
        reader = VideoFileReader(path, max_decoders=max_decoders, threads=decoder_threads)
    return VideoSource(reader, chunk_frames=chunk_frames, cache_bytes=cache_bytes)


class VideoFileReader:
    """Frame-exact reading of a video file through ffmpeg (a :class:`FrameReader`).

    Parameters
    ----------
    path : Path
        Video file.
    max_decoders : int
        Idle running decoders kept for continued reads; the least recently used beyond
        this are stopped.
    threads : int
        Threads of each ffmpeg decoder (0: ffmpeg's choice).
    """

    def __init__(
        self, path: Path, *, max_decoders: int = DEFAULT_MAX_DECODERS, threads: int = 0
    ) -> None:
        self.path = path
        self.index: FrameIndex = load_frame_index(path)
        self.signature = file_signature(path)
        self.n_frames = self.index.n_frames
        self.width, self.height = self.index.width, self.index.height
        self.fps, self.fps_assumed = plausible_fps(path, self.index.fps)
        self.timestamps = self.index.timestamps
        self._max_decoders = max_decoders
        self._threads = threads
        self._idle: list[_Decoder] = []
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_all, self._idle)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1`` as ``(n, H, W, 3)`` uint8 (thread-safe)."""
        decoder = self._checkout(start)
        try:
            decoder.skip(start - decoder.position)
            frames = decoder.read(stop - start)
        except BaseException:
            decoder.stop()
            raise
        self._checkin(decoder)
        return frames

    def iter_chunks(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """Decode frames ``start`` to ``stop - 1`` in one pass, ``chunk`` frames at a time."""
        decoder = _Decoder(self.path, self.index, start, stop=stop, threads=self._threads)
        try:
            decoder.skip(start - decoder.position)
            for first in range(start, stop, chunk):
                yield first, decoder.read(min(chunk, stop - first))
        finally:
            decoder.stop()

    def close(self) -> None:
        """Stop all running decoders; later reads raise ValueError."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def _checkout(self, start: int) -> _Decoder:
        """Take the idle decoder that reaches ``start`` most cheaply, or start a new one.

        The decoder is at or before ``start``; the caller skips it forward.
        """
        limit = max(_MAX_SKIP_FRAMES, start - self.index.decode_start(start))
        with self._lock:
            if self._closed:
                raise ValueError(f"{self.path}: the video source is closed.")
            usable = [d for d in self._idle if 0 <= start - d.position <= limit]
            decoder = min(usable, key=lambda d: start - d.position, default=None)
            if decoder is not None:
                self._idle.remove(decoder)
        if decoder is None:
            decoder = _Decoder(self.path, self.index, start, threads=self._threads)
        return decoder

    def _checkin(self, decoder: _Decoder) -> None:
        """Keep ``decoder`` running for a later read, stopping the least recently used."""
        with self._lock:
            if self._closed or decoder.position >= self.n_frames:
                excess = [decoder]
            else:
                self._idle.append(decoder)
                excess = self._idle[: max(0, len(self._idle) - self._max_decoders)]
                del self._idle[: len(excess)]
        for old in excess:
            old.stop()


class _Decoder:
    """One ffmpeg process decoding a video from a given frame on, as planar RGB.

    It starts at ``start`` or, in a file that is not seekable, at frame 0
    (:attr:`position` says where; use :meth:`skip` to move on to ``start``).

    ffmpeg writes ``gbrp`` (planar G, B, R), which it converts from planar YUV about
    twice as fast as packed ``rgb24`` (the pixel values are identical); the planes are
    interleaved here with numpy.
    """

    def __init__(
        self,
        path: Path,
        index: FrameIndex,
        start: int,
        stop: int | None = None,
        threads: int = 0,
    ):
        self.path = path
        first = start if index.seekable else 0
        self.position = first
        self._n_frames = index.n_frames
        self._frame_shape = (index.height, index.width)
        seek_time = index.seek_time(first)
        seek = [] if seek_time is None else ["-ss", f"{seek_time:.6f}"]
        limit = [] if stop is None else ["-frames:v", str(stop - first)]
        self._process = FFmpegProcess(
            [
                "-v",
                "error",
                *index.decoder_args,
                *seek,
                *(("-threads", str(threads)) if threads else ()),
                *("-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough"),
                *limit,
                *("-pix_fmt", "gbrp", "-f", "rawvideo", "-"),
            ],
            path,
            startup_s=(first - index.decode_start(first)) * _SEEK_SECONDS_PER_FRAME,
        )
        self._planar = np.empty((0, 3, *self._frame_shape), np.uint8)

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` frames as ``(n, H, W, 3)`` uint8 RGB."""
        out = np.empty((n, *self._frame_shape, 3), np.uint8)
        for first in range(0, n, _BLOCK_FRAMES):
            planar = self._read_planar(min(_BLOCK_FRAMES, n - first))
            block = out[first : first + len(planar)]
            block[..., 0] = planar[:, 2]
            block[..., 1] = planar[:, 0]
            block[..., 2] = planar[:, 1]
        return out

    def skip(self, n: int) -> None:
        """Decode and drop the next ``n`` frames."""
        for first in range(0, n, _BLOCK_FRAMES):
            self._read_planar(min(_BLOCK_FRAMES, n - first))

    def stop(self) -> None:
        """Kill the ffmpeg process."""
        self._process.kill()

    def _read_planar(self, n: int) -> np.ndarray:
        """The next ``n`` frames as ``(n, 3, H, W)`` planes G, B, R (a reused buffer)."""
        if len(self._planar) < n:
            self._planar = np.empty((n, 3, *self._frame_shape), np.uint8)
        planar = self._planar[:n]
        got = self._process.readinto(memoryview(planar).cast("B"))  # type: ignore[arg-type]  # numpy buffers
        if got < planar.nbytes:
            self._raise_short(self.position + got // planar[0].nbytes)
        self.position += n
        return planar

    def _raise_short(self, decoded_until: int) -> None:
        """Raise the error explaining why ffmpeg stopped at frame ``decoded_until``."""
        self._process.kill()
        check_readable(self.path)  # the file may have been removed meanwhile
        raise TruncatedVideoError(
            self.path,
            f"only frames up to {decoded_until - 1} could be decoded, "
            f"but the video lists {self._n_frames}.",
            "The file is probably cut short or damaged: copy it again from its source.",
        )


def _stop_all(decoders: list[_Decoder]) -> None:
    while decoders:
        decoders.pop().stop()


class _ChunkCache:
    """Thread-safe LRU of decoded chunks, at most ``max_chunks`` of them."""

    def __init__(self, max_chunks: int) -> None:
        self._max_chunks = max_chunks
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, number: int) -> np.ndarray | None:
        with self._lock:
            frames = self._chunks.get(number)
            if frames is not None:
                self._chunks.move_to_end(number)
            return frames

    def put(self, number: int, frames: np.ndarray) -> None:
        with self._lock:
            self._chunks[number] = frames
            self._chunks.move_to_end(number)
            while len(self._chunks) > self._max_chunks:
                self._chunks.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()


class _ChunkedFrames:
    """Array-like view of a :class:`VideoSource` for :func:`dask.array.from_array`.

    Indexing maps the requested frames to chunks (served by the source's LRU cache) and
    gathers them, so the dask graph holds one small object instead of per-chunk data.
    """

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        self.shape = source.shape
        self.dtype = source.dtype
        self.ndim = 4

    def __getitem__(self, key: tuple | slice | int) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        frame_key, rest = key[0], key[1:]
        indices = np.arange(self.shape[0])[frame_key]
        flat = np.atleast_1d(indices)
        size = self._source.chunk_frames
        numbers, positions = np.unique(flat // size, return_inverse=True)
        chunks = [self._source.chunk(int(number)) for number in numbers]
        frames = np.empty((len(flat), *self.shape[1:]), np.uint8)
        for slot, chunk in enumerate(chunks):
            mine = positions == slot
            frames[mine] = chunk[flat[mine] - int(numbers[slot]) * size]
        frames = frames[(slice(None), *rest)]
        return frames[0] if np.ndim(indices) == 0 else frames
