"""The views of a session ready for training: one frame cache per camera, in step.

Every view is cached at model scale through the 2D engine's
:func:`~bkind_model.frames.pipeline.prepare_video` (whole frames, letterboxed into one
square input size), and a synchronised frame ``t`` of the session is frame
``t + offset[v]`` of view ``v``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.pipeline import PreparedVideo, prepare_video
from bkind_model.io.video import VideoSource


@dataclass
class PreparedViews:
    """All views of one session at model scale.

    Attributes
    ----------
    videos : list of PreparedVideo
        One per camera, in view order.
    letterboxes : list of Letterbox
        Each view's source -> input geometry (one input size).
    offsets : tuple of int
        Frames skipped at the start of each view.
    n_frames : int
        Synchronised frames of the session.
    gap : int
        Frame gap of training pairs, frames.
    """

    videos: list[PreparedVideo]
    letterboxes: list[Letterbox]
    offsets: tuple[int, ...]
    n_frames: int
    gap: int

    @property
    def n_views(self) -> int:
        """V."""
        return len(self.videos)

    def inputs(self, t: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Synchronised frames ``t`` ``(B,)`` -> inputs ``(B, V, 3, H, W)`` in [0, 1]."""
        views = [
            video.inputs(np.asarray(t) + offset, device=device).images
            for video, offset in zip(self.videos, self.offsets, strict=True)
        ]
        return torch.stack(views, 1)

    def sample_pairs(
        self, batch: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` pairs ``(t, t + gap)`` of synchronised frames, each ``(B, V, 3, H, W)``."""
        t = torch.randint(0, self.n_frames - self.gap, (batch,), generator=generator).numpy()
        return self.inputs(t, device), self.inputs(t + self.gap, device)


def prepare_views(
    sources: list[VideoSource],
    letterboxes: list[Letterbox],
    offsets: tuple[int, ...],
    n_frames: int,
    config: Config,
    *,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PreparedViews:
    """Cache every view at model scale and check the gap fits the session.

    Parameters
    ----------
    sources : list of VideoSource
        One video per camera, in view order.
    letterboxes : list of Letterbox
        From :func:`~bkind_model.multiview.network.square_letterbox`.
    offsets : tuple of int
        Frames to skip at the start of each view.
    n_frames : int
        Synchronised frames common to all views.
    config : Config
        With ``frame_gap`` resolved.
    """
    gap = config.gap_frames(sources[0].fps)
    if gap >= n_frames:
        raise ConfigError(
            f"{sources[0].path}: frame gap {gap} frames is not shorter than the session "
            f"({n_frames} synchronised frames); choose a smaller gap."
        )
    videos = [
        prepare_video(s, lb, config, cache_dir=cache_dir, progress=progress)
        for s, lb in zip(sources, letterboxes, strict=True)
    ]
    return PreparedViews(videos, letterboxes, tuple(offsets), n_frames, gap)
