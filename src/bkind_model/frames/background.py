"""The empty arena: one per-pixel median of frames sampled across a video.

An animal that moves around is absent from most samples at any pixel, so the median is
the empty arena. The window that follows the animal compares frames with its gray level
(:attr:`Background.gray`), shadow masks with its colour (:attr:`Background.image`); both
come from the one median computed here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: A share of a frame below which a selection is almost surely empty (see
#: :func:`bkind_model.frames.masks.selection_problem`).
SELECTION_LIMIT = 0.002


def to_gray(frames: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB -> ``(...)`` float32 gray in [0, 1]."""
    weights = np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return frames.astype(np.float32) @ weights


def changed(frames: np.ndarray, background: np.ndarray, change: float) -> np.ndarray:
    """``(N, H, W)`` bool: pixels whose mean RGB difference from ``background`` exceeds ``change``.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8.
    background : ndarray
        ``(H, W, 3)`` uint8.
    change : float
        Threshold as a fraction of 255.
    """
    diff = np.abs(frames.astype(np.int16) - background.astype(np.int16)).mean(axis=-1)
    return diff > change * 255.0


@dataclass
class Background:
    """The empty arena at the size of the frames it was built from.

    Attributes
    ----------
    image : ndarray
        ``(H, W, 3)`` uint8 RGB per-pixel median.
    gray : ndarray
        ``(H, W)`` float32 gray per-pixel median in [0, 1].
    moving_fraction : float
        Mean share of a sampled frame that differs from the median (the animal, roughly).
    n_samples : int
        Frames the median was taken over.
    """

    image: np.ndarray
    gray: np.ndarray
    moving_fraction: float
    n_samples: int


def median_background(
    frames: np.ndarray, change: float = 0.1, *, check: bool = False
) -> Background:
    """The per-pixel median of frames sampled across a video.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8, sampled across the video
        (:func:`~bkind_model.frames.sampling.sample_frames`).
    change : float
        Difference (fraction of 255) counted as change for ``moving_fraction``.
    check : bool
        Warn when nothing moves (the background model of shadow masks needs motion).

    Returns
    -------
    Background

    Warns
    -----
    UserWarning
        With ``check``, when nothing moves (the animal never leaves its place, or the
        video is still): the animal is then part of the background.
    """
    image = np.median(frames, axis=0).astype(np.uint8)
    gray = np.median(to_gray(frames), axis=0).astype(np.float32)
    fraction = float(changed(frames, image, change).mean())
    if check and fraction < SELECTION_LIMIT:
        warnings.warn(
            f"The background model sees almost no change ({fraction:.2%} of each sampled "
            "frame): the animal never moves, so it is part of the background. Use the "
            "colour method, or a video where the animal moves around.",
            UserWarning,
            stacklevel=2,
        )
    return Background(image, gray, fraction, len(frames))
