"""The per-video frame index: the exact presentation time of every frame.

Container frame counts and naive seeking are not trustworthy (B-frames, keyframes far
apart, variable frame rates). The index is therefore built from the stream itself, once
per file, and cached on disk:

1. a *packet pass* demuxes the video stream without decoding it
   (``ffmpeg -c copy -f framecrc``), which prints every packet's presentation timestamp
   (pts) and keyframe flag; sorting the pts gives the frames in display order. This
   reads the file but decodes nothing, so it takes about a second for an hour of video.
2. when the packet pass is unusable (packets without pts, as in AVI files with
   B-frames, or duplicate pts), a *decoding pass* (``-c:v wrapped_avframe -f framecrc``)
   records the timestamps ffmpeg gives the decoded frames instead. Such files, and
   containers whose seeking is not index-based (MPEG-TS/PS, FLV, raw streams), are
   marked not seekable: they are always decoded from the first frame, which is exact
   but makes random access cost grow with the frame number.

With the pts known, frame ``i`` is reached exactly by asking ffmpeg to start at the
presentation time of frame ``i``, safely after that of frame ``i - 1`` (see
:meth:`FrameIndex.seek_time`).

The cache lives in :func:`cache_dir` (``$BKIND_CACHE_DIR`` or the user cache
directory); an entry is keyed by the file's resolved path, size and modification time,
so editing or replacing the file invalidates it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import platformdirs

from bkind_model.errors import EmptyVideoError, TruncatedVideoError
from bkind_model.io.atomic import atomic_path
from bkind_model.io.ffmpeg import check_readable, run_ffmpeg

#: Environment variable that overrides the cache directory (tests point it at tmp_path).
CACHE_ENV = "BKIND_CACHE_DIR"

_INDEX_VERSION = 1
_NOPTS = -(2**63)
_KEY_FLAG = 0x1
_DISCARD_FLAG = 0x4
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.MULTILINE)
_DIMENSIONS_RE = re.compile(r"^#dimensions 0: (\d+)x(\d+)", re.MULTILINE)
_CODEC_RE = re.compile(r"^#codec_id 0: (\w+)", re.MULTILINE)
_FPS_RE = re.compile(r"Video: .*?, (\d+(?:\.\d+)?) fps")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_X264_RE = re.compile(rb"x264 - core (\d+)")
_FORMAT_RE = re.compile(r"^Input #0, (\S+), from", re.MULTILINE)
#: Demuxers whose seeking uses a real frame index, so that accurate seeking is exact.
#: Others (MPEG-TS/PS, FLV, raw H.264 ...) seek by guessing byte positions, which lands
#: on wrong or undecodable frames; their files are always decoded from the start.
_SEEKABLE_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})
#: Box types an mp4/mov file starts with (old QuickTime files may lack ``ftyp``).
_ISOBMFF_FIRST_BOXES = frozenset({b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov"})
_PACKET_RE = re.compile(
    r"^\d+, *-?\d+, *(-?\d+),(?:[^,\n]*,){2}[^,\n]*(?:, F=0x([0-9A-Fa-f]+))?", re.MULTILINE
)


@dataclass(frozen=True)
class FrameIndex:
    """Presentation times and keyframes of every frame of one video stream.

    Attributes
    ----------
    pts : ndarray
        ``(T,)`` int64, presentation time of each frame in display order, in
        ``time_base`` units, counted from the file's start time. Strictly increasing.
    time_base : Fraction
        Seconds per ``pts`` unit.
    keyframes : ndarray
        ``(K,)`` int64, sorted frame numbers of keyframes (where decoding can start), as
        flagged by the container (only frame 0 when unknown). Frame 0 is always listed.
    width, height : int
        Size in pixels of the decoded frames (after applying rotation metadata).
    seekable : bool
        Whether ffmpeg seeks exactly in this file: an mp4/mov, mkv/webm or avi whose
        packets carry presentation times. Other files are always decoded from their
        first frame.
    decoder_args : tuple of str
        Extra ffmpeg input options every decoder of this file must use, so that random
        access decodes exactly like sequential decoding (see :func:`build_frame_index`).
    nominal_fps : float or None
        Frame rate stated by the container, used only when the video has one frame.
    """

    pts: np.ndarray
    time_base: Fraction
    keyframes: np.ndarray
    width: int
    height: int
    seekable: bool = True
    decoder_args: tuple[str, ...] = ()
    nominal_fps: float | None = None

    @property
    def n_frames(self) -> int:
        """Exact number of frames."""
        return len(self.pts)

    @property
    def timestamps(self) -> np.ndarray:
        """``(T,)`` float64 presentation time of each frame in seconds from the file start."""
        return self.pts * float(self.time_base)

    @property
    def fps(self) -> float | None:
        """Average frame rate (frames/s) from the timestamps, rounded to 1/1000.

        The container's stated rate for a single-frame video; None when unknown.
        """
        if self.n_frames < 2:
            return self.nominal_fps
        span = float((int(self.pts[-1]) - int(self.pts[0])) * self.time_base)
        return round((self.n_frames - 1) / span, 3) if span > 0 else None

    def seek_time(self, frame: int) -> float | None:
        """Input seek time (``ffmpeg -ss``, seconds) whose first output frame is ``frame``.

        ffmpeg adds the file's start time to an input ``-ss`` (the pts here already
        count from it), jumps to the last keyframe at or before that time and, with
        accurate seeking, drops the decoded frames presented before it. The time is the
        pts of ``frame`` rounded down to the microsecond ffmpeg parses, but never
        earlier than the midpoint to the previous frame: frame ``frame - 1`` is dropped,
        ``frame`` kept, and a keyframe is reached from itself rather than from the
        keyframe before it (a whole group of pictures less to decode).

        Returns
        -------
        float or None
            Seconds from the file start; None for frame 0 (decode from the beginning).
        """
        if frame == 0:
            return None
        pts = int(self.pts[frame]) * self.time_base
        midpoint = (int(self.pts[frame - 1]) * self.time_base + pts) / 2
        return max(float(midpoint), math.floor(pts * 10**6) / 10**6)

    def decode_start(self, frame: int) -> int:
        """The frame where decoding starts when a new decoder is asked for ``frame``.

        The last keyframe at or before ``frame``, or 0 when the file is not seekable.
        """
        if not self.seekable:
            return 0
        position = int(np.searchsorted(self.keyframes, frame, side="right")) - 1
        return int(self.keyframes[max(position, 0)])


def cache_dir(kind: str) -> Path:
    """Directory for cached data of one kind (``"index"``, ``"frames"`` ...).

    ``$BKIND_CACHE_DIR/<kind>`` when that environment variable is set, else
    ``<user cache dir>/bkind/<kind>`` (e.g. ``~/.cache/bkind/index`` on Linux).
    """
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("bkind")
    return Path(root) / kind


def file_signature(path: str | Path) -> str:
    """Hex digest identifying a file's current content: resolved path, size and mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    return _digest(f"{path}|{stat.st_size}|{stat.st_mtime_ns}")


def cache_stem(path: str | Path, signature: str, *parts: object) -> str:
    """Cache file stem ``<source key>-<content key>``.

    Parameters
    ----------
    path : str or Path
        The source file or folder.
    signature : str
        The source's content signature (e.g. :func:`file_signature`); it alone makes
        the content key.
    *parts
        Further values the cached data depends on (format version, frame size ...);
        they join the resolved path in the source key.

    Returns
    -------
    str
        Entries that differ only in the source's content share the source key, so
        stale ones can be found and removed (see :func:`remove_stale`).
    """
    source = "|".join([str(Path(path).resolve()), *map(str, parts)])
    return f"{_digest(source)}-{_digest(signature)}"


def remove_stale(directory: Path, stem: str, suffix: str) -> None:
    """Delete cache files with the source key of ``stem`` but another content key."""
    source_key = stem.split("-")[0]
    for old in directory.glob(f"{source_key}-*{suffix}"):
        if old.name != stem + suffix:
            old.unlink(missing_ok=True)


def load_frame_index(path: str | Path) -> FrameIndex:
    """The frame index of a video file, from the cache or built (and cached) now.

    Parameters
    ----------
    path : str or Path
        Video file.

    Returns
    -------
    FrameIndex

    Raises
    ------
    VideoError
        The file is missing, unreadable, not a video, empty, truncated, or ffmpeg
        stalled; see :func:`build_frame_index`.
    """
    path = Path(path)
    check_readable(path)
    directory = cache_dir("index")
    stem = cache_stem(path, file_signature(path), _INDEX_VERSION)
    cached = directory / f"{stem}.npz"
    # An absent or unreadable cache entry is rebuilt.
    with contextlib.suppress(OSError, KeyError, ValueError, zipfile.BadZipFile):
        return _read_index(cached)
    index = build_frame_index(path)
    try:
        _write_index(index, directory, stem)
    except OSError as error:
        warnings.warn(f"Frame index of {path} not cached: {error}", stacklevel=2)
    return index


def build_frame_index(path: str | Path) -> FrameIndex:
    """Build the frame index of a video file (no cache).

    For H.264 written by x264 the encoder version found in the first packet is recorded
    in :attr:`FrameIndex.decoder_args`: ffmpeg works around bugs of old x264 versions
    only when it has seen that version, which a decoder starting at a later keyframe has
    not (this is what corrupts random access into the shared open-field video).

    Parameters
    ----------
    path : str or Path
        Video file.

    Returns
    -------
    FrameIndex

    Raises
    ------
    VideoNotFoundError, VideoPermissionError
        The file is missing or unreadable.
    NotAVideoError
        ffmpeg cannot read the file as a video.
    EmptyVideoError
        The file has no video stream or the stream has no frames.
    TruncatedVideoError
        The file is cut short.
    DecoderTimeoutError
        ffmpeg stalled.
    """
    path = Path(path)
    check_readable(path)
    _check_isobmff_complete(path)
    with tempfile.TemporaryDirectory(prefix="bkind-index-") as tmp:
        first_packet = Path(tmp) / "first_packet.bin"
        stdout, stderr = run_ffmpeg(
            [
                *("-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"),
                *("-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "data"),
                str(first_packet),
            ],
            path,
        )
        first_bytes = first_packet.read_bytes() if first_packet.exists() else b""
    header, pts, flags = _parse_framecrc(stdout.decode())
    _raise_if_truncated(path, stderr)
    keep = (flags & _DISCARD_FLAG) == 0
    order = np.argsort(pts[keep], kind="stable")
    pts, keyframes = pts[keep][order], np.flatnonzero(flags[keep][order] & _KEY_FLAG)
    codec = _match(_CODEC_RE, header)
    decoder_args = _x264_decoder_args(first_bytes) if codec == "h264" else ()
    seekable = _match(_FORMAT_RE, stderr) in _SEEKABLE_FORMATS
    if (pts == _NOPTS).any() or (np.diff(pts) <= 0).any():
        # The decoder guesses these timestamps and guesses differently after a seek.
        header, pts = _decoded_pts(path, decoder_args)
        keyframes, seekable = np.zeros(1, np.int64), False
    if len(pts) == 0:
        raise EmptyVideoError(
            path, "the video stream holds no frames.", "Check that the recording worked."
        )
    width, height = (int(v) for v in _search(_DIMENSIONS_RE, header, path).groups())
    rotation = _ROTATION_RE.search(stderr)
    if rotation and round(float(rotation.group(1))) % 180 == 90:
        width, height = height, width
    num, den = (int(v) for v in _search(_TB_RE, header, path).groups())
    fps = _FPS_RE.search(stderr)
    return FrameIndex(
        pts=pts,
        time_base=Fraction(num, den),
        keyframes=np.union1d([0], keyframes).astype(np.int64),
        width=width,
        height=height,
        seekable=seekable,
        decoder_args=decoder_args,
        nominal_fps=float(fps.group(1)) if fps else None,
    )


def _parse_framecrc(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Split ffmpeg framecrc output into its ``#`` header and per-packet pts and flags.

    A packet line reads ``stream, dts, pts, duration, size, crc[, F=0x..][, S=..]``;
    ``F=`` appears only when the flags differ from "keyframe".
    """
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    rows = _PACKET_RE.findall(text)
    pts = np.array([row[0] for row in rows], dtype=str).astype(np.int64)
    flags = np.array([int(flag, 16) if flag else _KEY_FLAG for _, flag in rows], np.int64)
    return header, pts, flags


def _decoded_pts(path: Path, decoder_args: tuple[str, ...]) -> tuple[str, np.ndarray]:
    """Framecrc header and presentation times of the decoded frames (the decoding pass)."""
    stdout, _ = run_ffmpeg(
        [
            *decoder_args,
            *("-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough"),
            *("-c:v", "wrapped_avframe", "-enc_time_base", "demux", "-f", "framecrc", "-"),
        ],
        path,
    )
    header, pts, _ = _parse_framecrc(stdout.decode())
    return header, pts


def _x264_decoder_args(first_packet: bytes) -> tuple[str, ...]:
    """``("-x264_build", N)`` when the first packet carries x264's version SEI, else ()."""
    found = _X264_RE.search(first_packet)
    return ("-x264_build", found.group(1).decode()) if found else ()


def _raise_if_truncated(path: Path, stderr: str) -> None:
    """Raise TruncatedVideoError when ffmpeg reported reading past the end of the data."""
    if re.search(r"partial file|ended prematurely", stderr):
        raise TruncatedVideoError(
            path,
            "the file is cut short: the container lists data beyond the end of the file.",
            "Copy it again from its source; an interrupted recording can sometimes be "
            "repaired with a tool such as untrunc.",
        )


def _check_isobmff_complete(path: Path) -> None:
    """Raise TruncatedVideoError when an mp4/mov file's top-level boxes overrun its end.

    A cut mp4 either loses its ``moov`` box (written last by default) or keeps a
    ``moov`` (``-movflags +faststart``) that lists samples beyond the end of the
    file; in both cases the ``mdat`` box header claims more bytes than exist.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        if file.read(8)[4:8] not in _ISOBMFF_FIRST_BOXES:
            return
        offset = 0
        while offset < size:
            file.seek(offset)
            header = file.read(16)
            if len(header) < 8:
                break
            box_size = struct.unpack(">I", header[:4])[0]
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            if box_size == 0:  # the last box runs to the end of the file
                return
            if box_size < 8:  # not a box structure we understand: leave it to ffmpeg
                return
            offset += box_size
    if offset > size:
        raise TruncatedVideoError(
            path,
            f"the file is cut short: its boxes claim {offset} bytes but it has {size}.",
            "Copy it again from its source; an interrupted recording can sometimes be "
            "repaired with a tool such as untrunc.",
        )


def _match(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


def _search(pattern: re.Pattern[str], text: str, path: Path) -> re.Match[str]:
    """``pattern`` in ffprobe's output, or an error naming the file."""
    match = pattern.search(text)
    if match is None:
        raise TruncatedVideoError(
            path, "ffmpeg reports no video size or time base.", "Re-encode or re-export the file."
        )
    return match


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _write_index(index: FrameIndex, directory: Path, stem: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / f"{stem}.npz", suffix=".npz") as tmp:
        np.savez(
            tmp,
            pts=index.pts,
            keyframes=index.keyframes,
            time_base=np.array([index.time_base.numerator, index.time_base.denominator]),
            size=np.array([index.width, index.height]),
            seekable=np.array(index.seekable),
            decoder_args=np.array(index.decoder_args, dtype=str),
            nominal_fps=np.array(np.nan if index.nominal_fps is None else index.nominal_fps),
        )
    remove_stale(directory, stem, ".npz")


def _read_index(cached: Path) -> FrameIndex:
    with np.load(cached) as data:
        num, den = (int(v) for v in data["time_base"])
        width, height = (int(v) for v in data["size"])
        nominal_fps = float(data["nominal_fps"])
        return FrameIndex(
            pts=data["pts"],
            time_base=Fraction(num, den),
            keyframes=data["keyframes"],
            width=width,
            height=height,
            seekable=bool(data["seekable"]),
            decoder_args=tuple(str(v) for v in data["decoder_args"]),
            nominal_fps=None if np.isnan(nominal_fps) else nominal_fps,
        )
