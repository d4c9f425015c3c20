"""Keypoints of the training model on the frame the viewer shows, as a training step hook."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bkind_model.train.loop import Trainer, TrainingEvent

#: Seconds between refreshes of an unchanged focus frame.
FOCUS_EVERY_S = 3.0


@dataclass(frozen=True)
class FocusPreview:
    """The current model's keypoints on one frame the user is looking at.

    Attributes
    ----------
    video : int
        Index of the training video.
    frame : int
        Frame number in that video.
    keypoints : ndarray
        ``(K, 2)`` (x, y) in source pixels.
    """

    video: int
    frame: int
    keypoints: np.ndarray


class FocusHook:
    """A :class:`~bkind_model.train.loop.StepHook` that previews the viewed frame.

    The GUI thread sets :attr:`focus`; after a step the training thread predicts that
    frame when it changed, or every ``every_s`` seconds, and the result rides on the
    event as ``event.extras["focus"]``.

    Parameters
    ----------
    every_s : float
        Seconds between refreshes of an unchanged frame.
    """

    name = "focus"

    def __init__(self, every_s: float = FOCUS_EVERY_S) -> None:
        self.every_s = every_s
        #: ``(video index, frame)`` to preview; set it from any thread (one assignment).
        self.focus: tuple[int, int] | None = None
        self._shown: tuple[int, int] | None = None
        self._shown_at = 0.0

    def __call__(self, trainer: Trainer, event: TrainingEvent) -> FocusPreview | None:
        """Keypoints on the focus frame if it changed or ``every_s`` passed, else None."""
        focus = self.focus
        fresh = time.perf_counter() - self._shown_at < self.every_s
        if focus is None or (focus == self._shown and fresh):
            return None
        video, frame = focus
        self._shown, self._shown_at = focus, time.perf_counter()
        return FocusPreview(video, frame, trainer.keypoints_on(video, [frame])[0])
