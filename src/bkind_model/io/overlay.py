"""Draw keypoints and their trails on frames (numpy only), and write overlay videos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def keypoint_colors(n_keypoints: int) -> np.ndarray:
    """``(K, 3)`` uint8 RGB colour of each keypoint id (cycles after 20)."""
    return _PALETTE[np.arange(n_keypoints) % len(_PALETTE)]


def _stamp(frame: np.ndarray, x: float, y: float, radius: float, color, alpha: float) -> None:
    height, width = frame.shape[:2]
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    x0, x1 = max(0, int(x - radius - 1)), min(width, int(x + radius + 2))
    y0, y1 = max(0, int(y - radius - 1)), min(height, int(y + radius + 2))
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    coverage = np.clip(radius + 0.5 - np.hypot(xs - x, ys - y), 0, 1)[..., None] * alpha
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (patch * (1 - coverage) + np.asarray(color) * coverage).astype(np.uint8)


def draw_keypoints(
    frame: np.ndarray,
    keypoints: np.ndarray,
    *,
    trails: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    radius: float = 3.0,
) -> np.ndarray:
    """Draw keypoints (filled discs with a dark rim) and fading trails on a copy of a frame.

    Parameters
    ----------
    frame : ndarray
        ``(H, W, 3)`` uint8 RGB.
    keypoints : ndarray
        ``(K, 2)`` (x, y) px.
    trails : ndarray, optional
        ``(L, K, 2)`` earlier positions, oldest first, drawn as small fading dots.
    visible : ndarray, optional
        ``(K,)`` bool; hidden keypoints are drawn as hollow rings.
    radius : float
        Disc radius in pixels.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` uint8 with the drawing.
    """
    out = frame.copy()
    colors = keypoint_colors(len(keypoints))
    if trails is not None:
        for age, positions in enumerate(trails):
            alpha = 0.2 + 0.6 * (age + 1) / len(trails)
            for (x, y), color in zip(positions, colors, strict=True):
                _stamp(out, x, y, max(1.0, radius / 2), color, alpha)
    for k, ((x, y), color) in enumerate(zip(keypoints, colors, strict=True)):
        _stamp(out, x, y, radius + 1, (0, 0, 0), 1.0)
        _stamp(out, x, y, radius, color, 1.0)
        if visible is not None and not visible[k]:
            _stamp(out, x, y, radius - 1.5, (0, 0, 0), 1.0)
    return out


def write_overlay_video(
    result: KeypointResult,
    path: str | Path,
    *,
    video: str | Path | VideoSource | None = None,
    trail: int = 10,
    min_confidence: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the video with keypoints and trails drawn, as an H.264 mp4.

    Parameters
    ----------
    result : KeypointResult
        Keypoints of the video.
    path : str or Path
        Output mp4 (written atomically).
    video : str, Path or VideoSource, optional
        The source video; by default the one recorded in the results.
    trail : int
        Frames of trail behind each keypoint.
    min_confidence : float
        Keypoints below this confidence are drawn hollow.
    progress : callable, optional
        ``f(frames_done, n_frames)``.
    """
    source = (
        video if isinstance(video, VideoSource) else open_video(video or result.require_video())
    )
    n = min(source.n_frames, result.n_frames)

    def frames():
        for start, chunk in source.iter_chunks(64):
            for offset, frame in enumerate(chunk):
                t = start + offset
                if t >= n:
                    return
                past = result.keypoints[max(0, t - trail) : t]
                yield draw_keypoints(
                    frame,
                    result.keypoints[t],
                    trails=past if len(past) else None,
                    visible=result.confidence[t] >= min_confidence,
                    radius=max(2.0, source.width / 160),
                )
                if progress is not None:
                    progress(t + 1, n)

    height, width = source.height, source.width
    if height % 2 or width % 2:
        raise ValueError(
            f"{source.path}: odd frame size {width}x{height} cannot be written as H.264."
        )
    return write_video(path, frames(), source.fps)
