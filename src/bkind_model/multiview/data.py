"""The views of a session ready for training: one frame cache per camera, in step.

Every view is cached at model scale through the 2D engine's
:func:`~bkind_model.frames.pipeline.prepare_video`, and seen through a square window
that follows the animal in that view (or the whole frame, letterboxed), all views at one
input size. A synchronised frame ``t`` of the session is frame ``t + offset[v]`` of view
``v``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.frames.dissimilarity import gaussian_blur, to_gray
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.pipeline import PreparedVideo, prepare_video
from bkind_model.frames.windows import fill_missing
from bkind_model.io.video import VideoSource
from bkind_model.multiview.cameras import CameraRig


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
    track : ndarray or None
        ``(T, 3)`` the animal's triangulated centre, world units
        (:meth:`attach_track`).
    """

    videos: list[PreparedVideo]
    letterboxes: list[Letterbox]
    offsets: tuple[int, ...]
    n_frames: int
    gap: int
    track: np.ndarray | None = None

    @property
    def n_views(self) -> int:
        """V."""
        return len(self.videos)

    def inputs(
        self,
        t: np.ndarray,
        device: torch.device | str = "cpu",
        centres_of: np.ndarray | None = None,
        jitter: np.ndarray | None = None,
        with_foreground: bool = False,
    ) -> ViewInputs:
        """Synchronised frames ``t`` ``(B,)`` of every view as model inputs.

        Parameters
        ----------
        t : ndarray
            ``(B,)`` synchronised frame numbers.
        device : torch.device or str
            Where the tensors go.
        centres_of : ndarray, optional
            ``(B,)`` synchronised frames whose animal centres place the windows (the
            first frame of a pair, so both frames share one window); ``t`` when None.
        jitter : ndarray, optional
            ``(B, V, 2)`` integer window shifts, pixels at model scale.
        with_foreground : bool
            Also compute :attr:`ViewInputs.foreground` (training needs it; extraction not).
        """
        t = np.asarray(t)
        centres_of = t if centres_of is None else np.asarray(centres_of)
        images, offsets, backgrounds = [], [], []
        for v, (video, offset) in enumerate(zip(self.videos, self.offsets, strict=True)):
            shift = None if jitter is None else jitter[:, v]
            inputs = video.inputs(
                t + offset, shift, device, centres=video.centres[centres_of + offset]
            )
            images.append(inputs.images)
            offsets.append(inputs.offsets)
            if with_foreground:
                backgrounds.append(video.pipeline.windows.background_windows(inputs.offsets))
        window = torch.as_tensor(np.stack(offsets, 1), dtype=torch.float32, device=device)
        centres = None
        if self.track is not None:
            centres = torch.as_tensor(self.track[t], dtype=torch.float32, device=device)
        stacked = torch.stack(images, 1)
        animal = foreground(stacked, torch.stack(backgrounds, 1)) if with_foreground else None
        return ViewInputs(stacked, window, centres, animal)

    def attach_track(self, rig: CameraRig) -> np.ndarray:
        """Triangulate the animal's centre on every frame (:attr:`track`), gaps filled.

        Parameters
        ----------
        rig : CameraRig
            The cameras, in view order.

        Returns
        -------
        ndarray
            ``(T, 3)`` world units.
        """
        track = centroid_track(self, rig)
        if np.isnan(track).all():
            raise ConfigError(
                f"{self.videos[0].path}: the animal is found in fewer than two views on every "
                "frame, so it cannot be placed in 3D; check that the videos show it moving."
            )
        self.track = fill_missing(track, np.nanmean(track, 0))
        return self.track

    def sample_pairs(
        self, batch: int, generator: torch.Generator, jitter_px: int, device: torch.device | str
    ) -> tuple[ViewInputs, ViewInputs]:
        """``batch`` pairs ``(t, t + gap)`` of synchronised frames, each seen through one window."""
        t = torch.randint(0, self.n_frames - self.gap, (batch,), generator=generator).numpy()
        shape = (batch, self.n_views, 2)
        jitter = torch.randint(-jitter_px, jitter_px + 1, shape, generator=generator).numpy()
        first = self.inputs(t, device, jitter=jitter, with_foreground=True)
        second = self.inputs(t + self.gap, device, t, jitter, with_foreground=True)
        return first, second


@dataclass
class ViewInputs:
    """Model inputs of every view of some synchronised frames.

    Attributes
    ----------
    images : Tensor
        ``(B, V, 3, H, W)`` in [0, 1].
    offsets : Tensor
        ``(B, V, 2)`` float32 ``(x0, y0)`` of each input window in pixels of the frame at
        model scale (``-pad`` for letterboxed whole frames).
    centres : Tensor or None
        ``(B, 3)`` float32 the animal's triangulated centre, world units (None before
        :meth:`PreparedViews.attach_track`).
    foreground : Tensor or None
        ``(B, V, 1, H, W)`` in [0, 1]: how much each input pixel differs from the view's
        median background, smoothed at two scales (:func:`foreground`); None unless asked
        for (training pairs).
    """

    images: torch.Tensor
    offsets: torch.Tensor
    centres: torch.Tensor | None = None
    foreground: torch.Tensor | None = None


#: Gray difference from the background (0-1) at which a pixel counts fully as the animal.
FOREGROUND_FULL = 0.1
#: Blurs of the foreground map, input px: the fine one follows the silhouette, the wide one
#: still pulls a keypoint that is far off the animal towards it.
FOREGROUND_SIGMAS = (2.0, 8.0)


def foreground(images: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """A smooth map of the animal in each input, from its difference with the background.

    Parameters
    ----------
    images : Tensor
        ``(B, V, 3, H, W)`` inputs in [0, 1].
    backgrounds : Tensor
        ``(B, V, 1, H, W)`` the gray background seen through the same windows, [0, 1].

    Returns
    -------
    Tensor
        ``(B, V, 1, H, W)`` in [0, 1]: the mean of the clipped difference
        (``/ FOREGROUND_FULL``) blurred at each of :data:`FOREGROUND_SIGMAS`.
    """
    gray = to_gray(images.flatten(0, 1))
    change = ((gray - backgrounds.flatten(0, 1).to(gray)).abs() / FOREGROUND_FULL).clamp(0, 1)
    blurred = torch.stack([gaussian_blur(change, sigma) for sigma in FOREGROUND_SIGMAS])
    return blurred.mean(0).view_as(backgrounds)


def centroid_track(views: PreparedViews, rig: CameraRig) -> np.ndarray:
    """The triangulated foreground centre of every synchronised frame.

    Parameters
    ----------
    views : PreparedViews
        The session's views (their animal centres come from the background model).
    rig : CameraRig
        The cameras, in view order.

    Returns
    -------
    ndarray
        ``(T, 3)`` world units; NaN where fewer than two views see the animal.
    """
    t = np.arange(views.n_frames)
    pixels = []
    for video, box, offset in zip(views.videos, views.letterboxes, views.offsets, strict=True):
        scale = np.array(
            [box.resized_size[1] / box.source_size[1], box.resized_size[0] / box.source_size[0]]
        )
        pixels.append((video.centres[t + offset] + 0.5) / scale - 0.5)
    return rig.triangulate_numpy(np.stack(pixels, 1))


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
