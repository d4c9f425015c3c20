"""Suggest the frame gap from the video instead of asking the user to guess.

The two frames of a training pair must differ where the animal is, but not so much that
the animal's parts cannot be matched. We measure how much the animal's pixels change at
several gaps: the change rises with the gap and saturates once the animal (or a moving
part) has moved by more than its own size. The suggestion is the smallest gap that
reaches :data:`SATURATION_FRACTION` of the saturated change.

What is measured is the animal, not the camera or the rig:

- pixels are those of the foreground of the first frame (gray level more than
  ``FOREGROUND_THRESHOLD`` from the median background), so the floor does not count;
- pixels that reach most of their change within one frame are left out: sensor noise,
  flicker, and background objects that move fast and repeat (a running wheel's spokes or
  grating, a rotating lever), which would saturate at one frame whatever the animal does;
- the sensor's noise floor (the median change of all pixels from one frame to the next)
  is subtracted.

Candidate gaps span 1 frame to 1 second, spaced evenly in log, so the same behaviour
gives about the same gap in seconds from 15 to 500 fps.
"""

from __future__ import annotations

import numpy as np
import torch

from bkind_model.errors import ConfigError
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.frames.windows import FOREGROUND_THRESHOLD
from bkind_model.io.video import VideoSource

SATURATION_FRACTION = 0.4
#: A pixel whose change after one frame is this share of its mean change over the gaps
#: saturates too fast to be the animal (noise, flicker, a spinning wheel, whose pattern
#: may also repeat after a few frames).
FAST_FRACTION = 0.6
#: Longest candidate gap, seconds: the same span of time at every frame rate, so that the
#: peak the fraction refers to is the same.
LONGEST_GAP_S = 1.0
N_CANDIDATES = 16
#: Bytes of full-size frames held at once (RGB bytes and one colour as floats): the
#: measurement's memory stays bounded whatever the frame size (one 4000x4000 frame was
#: 192 MB as floats).
READ_BYTES = 32 * 2**20


def candidate_gaps(fps: float, n_frames: int) -> np.ndarray:
    """Gaps to measure, frames: 1 frame to 1 s, log-spaced, within a third of the video.

    Returns
    -------
    ndarray
        ``(G,)`` increasing int gaps, at least one.
    """
    longest = max(2, round(LONGEST_GAP_S * fps))
    longest = max(1, min(longest, n_frames // 3))
    return np.unique(np.round(np.geomspace(1, longest, N_CANDIDATES)).astype(int))


def measure_motion(
    source: VideoSource,
    gaps: np.ndarray | None = None,
    n_windows: int = 8,
    long_side: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Change of the animal's pixels between frames ``t`` and ``t + gap``.

    Parameters
    ----------
    source : VideoSource
        The video.
    gaps : ndarray, optional
        Candidate gaps in frames; :func:`candidate_gaps` by default.
    n_windows : int
        Windows of consecutive frames read across the video (one decoder pass each).
    long_side : int
        Frames are downscaled to this long side (pixels) before measuring.

    Returns
    -------
    gaps : ndarray
        ``(G,)`` the gaps measured, frames.
    motion : ndarray
        ``(G,)`` mean absolute gray-level change (0-1) of the foreground pixels that do
        not saturate within a frame, above the noise floor.
    """
    if gaps is None:
        gaps = candidate_gaps(source.fps, source.n_frames)
    usable = np.array([g for g in gaps if g <= max(1, source.n_frames // 3)], dtype=int)
    span = int(usable.max()) + 1
    starts = evenly_spaced(source.n_frames - span + 1, n_windows)
    box = Letterbox.fit((source.height, source.width), long_side, multiple=1)
    windows = [_small_gray(source, int(start), int(start) + span, box) for start in starts]
    stride = max(1, span // 12)
    background = np.median(np.concatenate([w[::stride] for w in windows]), axis=0)
    # One pass over the pairs: per pixel, the mean change (all frames) and the change
    # summed over the frames where the pixel is foreground, with that frame count.
    shape = (len(windows), len(usable), *background.shape)
    change = np.zeros(shape[1:])
    foreground_change, foreground_count = np.zeros(shape), np.zeros(shape)
    for w, frames in enumerate(windows):
        foreground = np.abs(frames - background) > FOREGROUND_THRESHOLD
        for i, gap in enumerate(usable):
            moved = np.abs(frames[:-gap] - frames[gap:])
            change[i] += moved.mean(axis=0)
            foreground_change[w, i] = (moved * foreground[:-gap]).sum(axis=0)
            foreground_count[w, i] = foreground[:-gap].sum(axis=0)
    change /= len(windows)
    noise = float(np.median(change[0]))
    keep = ~(change[0] >= FAST_FRACTION * np.maximum(change.mean(axis=0), 3 * noise))
    moved_sum = (foreground_change * keep).sum(axis=(2, 3))  # (windows, gaps)
    counted = np.maximum((foreground_count * keep).sum(axis=(2, 3)), 1)
    motion = (moved_sum / counted).sum(axis=0)
    return usable, np.maximum(motion / len(windows) - noise, 0.0)


def _small_gray(source: VideoSource, start: int, stop: int, box: Letterbox) -> np.ndarray:
    """Frames ``start`` to ``stop - 1`` scaled by ``box`` and made gray, a few at a time.

    Returns
    -------
    ndarray
        ``(stop - start, h, w)`` float32 gray levels (0-1), the mean of R, G and B.
    """
    per_read = max(1, READ_BYTES // (source.height * source.width * (3 + 4)))
    parts = []
    for first in range(start, stop, per_read):
        frames = torch.from_numpy(source.read(first, min(first + per_read, stop)))
        # one colour at a time as floats: a third of the memory, the same values
        small = torch.cat([box.apply(_plane(frames, c)) for c in range(3)], dim=1)
        parts.append(small.mean(dim=1).numpy())
    return np.concatenate(parts)


def _plane(frames: torch.Tensor, channel: int) -> torch.Tensor:
    """``(B, 1, H, W)`` float (0-1) of one channel of ``(B, H, W, 3)`` uint8 frames."""
    return frames[..., channel, None].permute(0, 3, 1, 2).float().div_(255.0)


def suggest_frame_gap(source: VideoSource) -> int:
    """The smallest gap (frames) whose motion reaches :data:`SATURATION_FRACTION` of its peak.

    Parameters
    ----------
    source : VideoSource
        The video.

    Returns
    -------
    int
        Suggested gap in frames (at least 1).

    Raises
    ------
    ConfigError
        For a video of one frame (no pair to measure).
    """
    if source.n_frames < 2:
        raise ConfigError(
            f"{source.path}: the video has {source.n_frames} frame; training needs pairs of "
            "frames, so use a longer video (or more videos)."
        )
    gaps, motion = measure_motion(source)
    if len(gaps) == 1 or motion.max() <= 0:
        return int(gaps[0])
    reached = np.nonzero(motion >= SATURATION_FRACTION * motion.max())[0]
    return int(gaps[reached[0]])
