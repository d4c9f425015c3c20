"""Suggest the frame gap from the video instead of asking the user to guess.

The two frames of a training pair must differ where the animal is, but not so much that
the animal's parts cannot be matched. We measure the structural dissimilarity of the
moving pixels at several gaps: it rises with the gap and saturates once the animal has
moved by more than its own size. We suggest the smallest gap that reaches two thirds of
the saturated value (about 0.2 s for a mouse at 30 fps, as the original method advises;
half of it gave gaps of 0.1 s, with which training learned markedly slower).
"""

from __future__ import annotations

import numpy as np
import torch

from bkind_model.errors import ConfigError
from bkind_model.frames.dissimilarity import structural_dissimilarity
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.video import VideoSource

SATURATION_FRACTION = 0.65
CANDIDATE_GAPS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


def measure_motion(
    source: VideoSource,
    gaps: tuple[int, ...] = CANDIDATE_GAPS,
    n_windows: int = 8,
    long_side: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Motion of the moving pixels between frames ``t`` and ``t + gap``.

    Parameters
    ----------
    source : VideoSource
        The video.
    gaps : tuple of int
        Candidate gaps in frames; those longer than a third of the video are dropped.
    n_windows : int
        Windows of consecutive frames read across the video (one decoder pass each).
    long_side : int
        Frames are downscaled to this long side (pixels) before measuring.

    Returns
    -------
    gaps : ndarray
        ``(G,)`` the gaps measured, frames.
    motion : ndarray
        ``(G,)`` mean structural dissimilarity of the top 2% pixels, in [0, 2].
    """
    usable = np.array([g for g in gaps if g <= max(1, source.n_frames // 3)])
    span = int(usable.max()) + 1
    starts = evenly_spaced(source.n_frames - span + 1, n_windows)
    box = Letterbox.fit((source.height, source.width), long_side, multiple=1)
    totals = np.zeros(len(usable))
    for start in starts:
        window = torch.from_numpy(source.read(int(start), int(start) + span))
        frames = box.apply(window.permute(0, 3, 1, 2).float() / 255.0)
        for i, gap in enumerate(usable):
            d = structural_dissimilarity(
                frames[: -gap : max(1, gap // 2)], frames[gap :: max(1, gap // 2)]
            )
            flat = d.flatten(1)
            top = flat.topk(max(1, flat.shape[1] // 50), dim=1).values
            totals[i] += float(top.mean())
    return usable, totals / len(starts)


def suggest_frame_gap(source: VideoSource) -> int:
    """The smallest gap (frames) whose motion reaches 65% of the saturated motion.

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
