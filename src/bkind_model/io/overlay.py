"""Keypoints, skeleton, trails and names drawn on a video, written as mp4 (labelled video).

The drawing is numpy: discs and lines are painted from each pixel's distance to a segment
(a disc is a segment of length zero), anti-aliased over half a pixel. Names are rendered
once per name and size with Pillow's default font and blended the same way. Coordinates
are ``(x, y)`` px with the centre of the top-left pixel at ``(0, 0)``.

Which keypoints count as seen is decided by their likelihood,
:meth:`~bkind_model.io.results.KeypointResult.likelihoods` (in [0, 1]; NaN counts as
unseen), the one every export writes. Points below the threshold are drawn hollow,
without their skeleton edges and trails.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bkind_model.errors import ConfigError, PathError, VideoNotFoundError
from bkind_model.io.atomic import ensure_folder
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import VideoSource, open_video
from bkind_model.io.video_writer import write_video

# Distinct colours (tab20-like, strong first) so keypoint i has the same colour everywhere.
_PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 255, 255),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (219, 219, 141), (158, 218, 229), (127, 127, 127),
    ],
    dtype=np.uint8,
)  # fmt: skip

_RIM = (0, 0, 0)

#: An RGB colour: a ``(3,)`` uint8 array or a tuple of three ints.
Color = np.ndarray | tuple[int, int, int]

#: A skeleton as given by a user: ``"a-b,c-d"`` or pairs of keypoint names or indices.
SkeletonSpec = str | Sequence[Sequence[str | int]]


class OverlayError(PathError):
    """The overlay cannot be written: results, video and output file do not fit together."""


def keypoint_colors(n_keypoints: int) -> np.ndarray:
    """``(K, 3)`` uint8 RGB colour of each keypoint id (cycles after 20)."""
    return _PALETTE[np.arange(n_keypoints) % len(_PALETTE)]


def skeleton_edges(skeleton: SkeletonSpec | None, names: Sequence[str]) -> list[tuple[int, int]]:
    """Keypoint index pairs of a skeleton given by names or indices.

    Parameters
    ----------
    skeleton : str or sequence of pairs, optional
        ``"nose-neck,neck-tail"`` (an item is split at the ``-`` that leaves a keypoint
        name or index on both sides, so names may hold ``-``), or pairs such as
        ``[["nose", "neck"], [1, 2]]``. None or empty: no edges.
    names : sequence of str
        The K keypoint names.

    Returns
    -------
    list of (int, int)
        Edges as keypoint indices in ``[0, K)``.

    Raises
    ------
    ConfigError
        For an item that names no keypoint, with the known names.
    """
    if not skeleton:
        return []
    pairs = (
        [_split_edge(item.strip(), names) for item in skeleton.split(",") if item.strip()]
        if isinstance(skeleton, str)
        else [tuple(pair) for pair in skeleton]
    )
    edges = []
    for pair in pairs:
        if len(pair) != 2:
            raise ConfigError(f"skeleton edge {pair!r}: an edge joins two keypoints.")
        edges.append((_keypoint_index(pair[0], names), _keypoint_index(pair[1], names)))
    return edges


def _keypoint_index(key: str | int, names: Sequence[str]) -> int:
    """The index of keypoint ``key`` (a name, an index, or an index written as text)."""
    if isinstance(key, str) and key in names:
        return list(names).index(key)
    if isinstance(key, int | np.integer) or (isinstance(key, str) and key.isdigit()):
        if 0 <= int(key) < len(names):
            return int(key)
    raise _unknown_keypoint(key, names)


def _unknown_keypoint(key: str | int, names: Sequence[str]) -> ConfigError:
    """The error for a skeleton naming a keypoint that is not there."""
    return ConfigError(
        f"skeleton: {key!r} is not one of the {len(names)} keypoints "
        f"({', '.join(names)}); name them or give their indices 0-{len(names) - 1}."
    )


def _split_edge(item: str, names: Sequence[str]) -> tuple[str, str]:
    """``"a-b"`` -> ``("a", "b")``, splitting at the ``-`` that leaves two keypoints."""
    known = {*names, *map(str, range(len(names)))}
    cuts = [m.start() for m in re.finditer("-", item)]
    for cut in cuts:
        first, second = item[:cut].strip(), item[cut + 1 :].strip()
        if first in known and second in known:
            return first, second
    if not cuts:
        raise ConfigError(f"skeleton edge {item!r}: write two keypoints as a-b, e.g. nose-neck.")
    first, second = item[: cuts[0]].strip(), item[cuts[0] + 1 :].strip()
    raise _unknown_keypoint(second if first in known else first, names)


def _blend(frame: np.ndarray, x0: int, y0: int, coverage: np.ndarray, color) -> None:
    """Paint ``color`` over ``frame`` in place with ``(h, w)`` coverage at ``(x0, y0)``."""
    height, width = frame.shape[:2]
    h, w = coverage.shape
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = min(h, height - y0), min(w, width - x0)
    if top >= bottom or left >= right:
        return
    cover = coverage[top:bottom, left:right, None]
    rows, cols = slice(y0 + top, y0 + bottom), slice(x0 + left, x0 + right)
    patch = frame[rows, cols].astype(np.float32)
    frame[rows, cols] = (patch + (np.asarray(color, np.float32) - patch) * cover + 0.5).astype(
        np.uint8
    )


def _stamp(frame: np.ndarray, a, b, layers: Sequence[tuple[float, Color]], alpha=1.0) -> None:
    """Paint segments ``a``-``b``, thickened, in layers of colour (a rim, a fill ...), in place.

    Parameters
    ----------
    frame : ndarray
        ``(H, W, 3)`` uint8 RGB, painted in place.
    a, b : array_like
        ``(2,)`` or ``(N, 2)`` (x, y) px of the segments' ends; ``a == b`` paints a disc.
        Segments with a non-finite end are skipped.
    layers : sequence of (float, colour)
        ``(radius, rgb)`` painted in order: half the line width in px and its colour.
    alpha : float or array_like
        Opacity, or ``(N,)`` one per segment. Each pixel is covered by how far it lies
        inside its nearest segment (anti-aliased over one pixel) times that segment's
        opacity, the largest over the segments, so a polyline has no darker joints.
    """
    a, b = np.asarray(a, np.float32).reshape(-1, 2), np.asarray(b, np.float32).reshape(-1, 2)
    alpha = np.broadcast_to(np.asarray(alpha, np.float32), (len(a),))
    keep = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    reach = max(radius for radius, _ in layers)
    if reach <= 0 or not keep.any():
        return
    a, b, alpha = a[keep], b[keep], alpha[keep]
    height, width = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(np.minimum(a, b).min(0) - reach - 1), 0).astype(int)
    x1, y1 = np.ceil(np.maximum(a, b).max(0) + reach + 2).astype(int)
    x1, y1 = min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1, dtype=np.float32)[None, None] - a[:, 0, None, None]
    ys = np.arange(y0, y1, dtype=np.float32)[None, :, None] - a[:, 1, None, None]
    d = b - a
    dx, dy = d[:, 0, None, None], d[:, 1, None, None]
    length2 = np.maximum(dx * dx + dy * dy, np.finfo(np.float32).tiny)
    t = np.clip((xs * dx + ys * dy) / length2, 0, 1)  # nearest point of each segment
    inside = 0.5 - np.hypot(xs - t * dx, ys - t * dy)  # (N, h, w) px, > 0 on the line
    opacity = alpha[:, None, None]
    for radius, color in layers:
        coverage = (np.clip(inside + radius, 0, 1) * opacity).max(0)
        _blend(frame, int(x0), int(y0), coverage, color)


@functools.lru_cache(maxsize=512)
def _label(text: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage ``(h, w)`` float32 in [0, 1] of ``text`` and of its one-pixel dark outline."""
    font = ImageFont.load_default(size)
    left, top, right, bottom = (round(v) for v in font.getbbox(text, stroke_width=1))
    masks = []
    for stroke in (1, 0):
        image = Image.new("L", (right - left, bottom - top))
        ImageDraw.Draw(image).text((-left, -top), text, fill=255, font=font, stroke_width=stroke)
        masks.append(np.asarray(image, dtype=np.float32) / 255)
    outline, fill = masks
    return fill, outline


def draw_keypoints(
    frame: np.ndarray,
    keypoints: np.ndarray,
    *,
    trails: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    radius: float = 3.0,
    edges: Sequence[tuple[int, int]] = (),
    names: Sequence[str] | None = None,
    font_size: int | None = None,
) -> np.ndarray:
    """Draw keypoints, skeleton, fading trails and names on a copy of a frame.

    Keypoint ``k`` has colour ``keypoint_colors(K)[k]``; a skeleton edge has the colour of
    its first keypoint. Everything has a dark rim so it shows on light and dark frames.

    Parameters
    ----------
    frame : ndarray
        ``(H, W, 3)`` uint8 RGB.
    keypoints : ndarray
        ``(K, 2)`` (x, y) px; NaN where a keypoint is missing.
    trails : ndarray, optional
        ``(L, K, 2)`` earlier positions, oldest first (NaN breaks a trail), drawn as
        lines to the current position that fade with age.
    visible : ndarray, optional
        ``(K,)`` bool; hidden keypoints are drawn as hollow rings without skeleton edges.
    radius : float
        Disc radius in px; lines are a third of it wide on each side (at least 1 px).
    edges : sequence of (int, int)
        Skeleton edges as keypoint index pairs (:func:`skeleton_edges`).
    names : sequence of str, optional
        ``K`` names written right of the keypoints; None writes none.
    font_size : int, optional
        Text size in px; by default three times the radius (at least 10).

    Returns
    -------
    ndarray
        ``(H, W, 3)`` uint8 with the drawing.
    """
    out = frame.copy()
    colors = keypoint_colors(len(keypoints))
    shown = np.ones(len(keypoints), bool) if visible is None else np.asarray(visible, bool)
    line = max(1.0, radius / 3)
    if trails is not None and len(trails):
        path = np.concatenate([trails, keypoints[None]])
        fade = 0.2 + 0.6 * np.arange(1, len(trails) + 1) / len(trails)  # oldest faintest
        for k, color in enumerate(colors):
            _stamp(out, path[:-1, k], path[1:, k], [(line, color)], fade)
    for i, j in edges:
        if shown[i] and shown[j]:
            _stamp(out, keypoints[i], keypoints[j], [(line + 1, _RIM), (line, colors[i])])
    for k, (point, color) in enumerate(zip(keypoints, colors, strict=True)):
        hollow = [] if shown[k] else [(radius - 1.5, _RIM)]
        _stamp(out, point, point, [(radius + 1, _RIM), (radius, color), *hollow])
    if names is not None:
        size = font_size or max(10, round(3 * radius))
        for (x, y), name, color in zip(keypoints, names, colors, strict=True):
            if np.isfinite([x, y]).all():
                fill, outline = _label(name, size)
                x0, y0 = round(x + radius + 2), round(y - fill.shape[0] / 2)
                _blend(out, x0, y0, outline, _RIM)
                _blend(out, x0, y0, fill, color)
    return out


def default_overlay_path(results: str | Path) -> Path:
    """Where an overlay of a results file goes by default: ``<stem>.overlay.mp4`` beside it."""
    results = Path(results)
    return results.with_name(f"{results.stem}.overlay.mp4")


def write_overlay_video(
    result: KeypointResult,
    path: str | Path,
    *,
    video: str | Path | VideoSource | None = None,
    trail: int = 10,
    skeleton: SkeletonSpec | None = None,
    names: bool = True,
    min_likelihood: float = 0.6,
    start: int = 0,
    stop: int | None = None,
    scale: float = 1.0,
    radius: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the video with keypoints, skeleton, trails and names drawn, as an H.264 mp4.

    Nothing is written before the results, video and output are checked; the file appears
    only when complete (an error or a cancel leaves no partial file). An odd frame size is
    padded by one pixel at the right or bottom (H.264 needs even sizes).

    Parameters
    ----------
    result : KeypointResult
        Keypoints of the video, ``(T, K, 2)`` px.
    path : str or Path
        Output mp4; its folder is made when missing.
    video : str, Path or VideoSource, optional
        The source video; by default the one recorded in the results.
    trail : int
        Frames of trail behind each keypoint (0: none).
    skeleton : str or sequence of pairs, optional
        Edges to draw (:func:`skeleton_edges`); by default the results' ``skeleton``
        metadata (named bodyparts), none for discovered keypoints. ``""`` draws none.
    names : bool
        Write each keypoint's name beside it.
    min_likelihood : float
        Keypoints whose likelihood (0-1) is below this are drawn hollow, without edges
        or trails (default 0.6, DeepLabCut's usual ``pcutoff``).
    start, stop : int
        Frames ``start`` to ``stop - 1`` of the video are written (``stop`` defaults to the
        end); trails reach back before ``start``.
    scale : float
        Output size as a fraction of the video's, in ``(0, 1]``, for big videos.
    radius : float, optional
        Keypoint disc radius in px of the output, finite and > 0; by default 1/160 of its
        width (>= 2).
    overwrite : bool
        Replace an existing file at ``path`` (never the video or the results file:
        :func:`bkind_model.io.outputs.check_output`).
    progress : callable, optional
        ``f(frames_done, n_frames)`` after each frame; an exception raised there (a
        cancel) stops the writing and leaves no file.

    Returns
    -------
    Path
        The written video, at the video's frame rate.

    Raises
    ------
    OutputIsInputError, ExistingFileError
        When the output would replace the video or results, or exists without
        ``overwrite``.
    OverlayError
        When the results belong to another video (frame count, size, rate or pictures
        differ: :meth:`KeypointResult.video_mismatch`).
    ConfigError
        For an empty frame range, a scale outside ``(0, 1]``, a negative trail, a
        ``min_likelihood`` outside ``[0, 1]``, a radius that is not a number > 0 or a
        skeleton naming unknown keypoints.
    VideoError, WriteError
        When the video cannot be read or the output folder cannot be written.
    """
    path = Path(path)
    if not 0 < scale <= 1 or trail < 0:
        raise ConfigError(f"overlay: scale {scale} must be in (0, 1] and trail {trail} >= 0.")
    if not 0 <= min_likelihood <= 1 or not (radius is None or 0 < radius < np.inf):
        raise ConfigError(
            f"overlay: min_likelihood {min_likelihood} must be in [0, 1] and radius {radius} "
            "a number > 0 (px)."
        )
    edges = skeleton_edges(
        result.metadata.get("skeleton") if skeleton is None else skeleton, result.keypoint_names
    )
    recorded = video.path if isinstance(video, VideoSource) else video or result.video_path
    check_output(
        path,
        (result.path, recorded),
        overwrite=overwrite,
        option="`bkind overlay --overwrite` (*Replace an existing file* in the plugin)",
    )
    opened = not isinstance(video, VideoSource)
    source = video if isinstance(video, VideoSource) else _open_video_of(result, video)
    try:
        _check_match(result, source)
        stop = source.n_frames if stop is None else stop
        if not 0 <= start < stop <= source.n_frames:
            raise ConfigError(
                f"overlay of {source.path}: frames {start} to {stop} are not a range of its "
                f"{source.n_frames} frames; choose 0 <= start < stop <= {source.n_frames}."
            )
        ensure_folder(path.parent, "output folder")
        frames = _overlay_frames(
            result, source, edges, names, trail, min_likelihood, (start, stop), scale, radius
        )
        return write_video(path, _reporting(frames, stop - start, progress), source.fps)
    finally:
        if opened:
            source.close()


def _open_video_of(result: KeypointResult, video: str | Path | None) -> VideoSource:
    """Open ``video``, or the results' recorded one with a fix that says to give it."""
    if video is not None:
        return open_video(video)
    recorded = result.require_video()
    try:
        return open_video(recorded)
    except VideoNotFoundError as exc:
        raise VideoNotFoundError(
            recorded,
            f"the video of {result.path or 'these keypoints'} does not exist (moved or deleted).",
            "Give the video explicitly (`bkind overlay RESULTS --video VIDEO`).",
        ) from exc


def _check_match(result: KeypointResult, source: VideoSource) -> None:
    """Raise :class:`OverlayError` when the results are not of this video."""
    problem = result.video_mismatch(source)
    if problem is not None:
        raise OverlayError(
            result.path or source.path,
            problem,
            "Give the video they were discovered in (`--video`), or extract keypoints of this "
            "video first (`bkind extract`).",
        )


def _overlay_frames(
    result: KeypointResult,
    source: VideoSource,
    edges: list[tuple[int, int]],
    names: bool,
    trail: int,
    min_likelihood: float,
    frames: tuple[int, int],
    scale: float,
    radius: float | None,
) -> Iterator[np.ndarray]:
    """Frames ``start`` to ``stop - 1`` drawn, resized by ``scale`` and padded to even sizes."""
    start, stop = frames
    width, height = source.width, source.height
    content = (max(1, round(width * scale)), max(1, round(height * scale)))
    pad = ((0, content[1] % 2), (0, content[0] % 2), (0, 0))
    factor = np.array([content[0] / width, content[1] / height], np.float32)
    keypoints = (result.keypoints.astype(np.float32) + 0.5) * factor - 0.5
    seen = result.likelihoods() >= min_likelihood
    trails = np.where(seen[..., None], keypoints, np.nan)
    labels = result.keypoint_names if names else None
    radius = radius or max(2.0, content[0] / 160)
    for first, chunk in source.iter_chunks(64, start, stop):
        for t, frame in enumerate(chunk, start=first):
            if content != (width, height):
                frame = np.asarray(Image.fromarray(frame).resize(content, Image.Resampling.BOX))
            past = trails[max(0, t - trail) : t]
            drawn = draw_keypoints(
                frame,
                keypoints[t],
                trails=past,
                visible=seen[t],
                radius=radius,
                edges=edges,
                names=labels,
            )
            yield np.pad(drawn, pad, mode="edge")


def _reporting(
    frames: Iterator[np.ndarray], total: int, progress: Callable[[int, int], None] | None
) -> Iterator[np.ndarray]:
    """``frames``, calling ``progress(done, total)`` after each was consumed."""
    for done, frame in enumerate(frames, start=1):
        yield frame
        if progress is not None:
            progress(done, total)
