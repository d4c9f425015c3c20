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
from bkind_model.frames.background import to_gray as to_gray_numpy
from bkind_model.frames.dissimilarity import gaussian_blur, to_gray
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.pipeline import PreparedVideo, prepare_video
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.frames.windows import FOREGROUND_THRESHOLD, fill_missing
from bkind_model.io.video import VideoSource, open_video
from bkind_model.multiview.cameras import CameraRig
from bkind_model.multiview.views import Session, ViewsError


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


def centre_pixels(views: PreparedViews, t: np.ndarray | None = None) -> np.ndarray:
    """The animal's foreground centre in every view, source pixels.

    Parameters
    ----------
    views : PreparedViews
        The session's views (their animal centres come from the background model).
    t : ndarray, optional
        ``(N,)`` synchronised frames (all when None).

    Returns
    -------
    ndarray
        ``(N, V, 2)`` ``(x, y)`` in each view's source pixels.
    """
    t = np.arange(views.n_frames) if t is None else np.asarray(t)
    pixels = []
    for video, box, offset in zip(views.videos, views.letterboxes, views.offsets, strict=True):
        scale = np.array(
            [box.resized_size[1] / box.source_size[1], box.resized_size[0] / box.source_size[0]]
        )
        pixels.append((video.centres[t + offset] + 0.5) / scale - 0.5)
    return np.stack(pixels, 1)


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
    return rig.triangulate_numpy(centre_pixels(views))


#: Synchronised frames (evenly spaced) on which :func:`check_views_agree` measures.
AGREEMENT_FRAMES = 200
#: How many times better another assignment (or the other views) must agree to be blamed.
AGREEMENT_RATIO = 2.0
#: Disagreement, as a share of the image diagonal, below which no view is blamed.
AGREEMENT_FLOOR = 0.05


#: Frames on which each view's share of changing pixels is measured.
CHANGING_FRAMES = 16
#: Share of a frame differing from the median background above which a view has none.
CHANGING_LIMIT = 0.5
#: Largest side, px, of the thinned frames :func:`changing_share` compares.
CHANGING_SIDE = 256


def changing_share(source: VideoSource, frames: np.ndarray) -> float:
    """Median share of a video's pixels that differ from the median of some of its frames.

    Frames are read at the source's resolution, one at a time, and thinned by a stride to
    at most :data:`CHANGING_SIDE` pixels a side (no averaging, so per-pixel noise stays).

    Parameters
    ----------
    source : VideoSource
        The video.
    frames : ndarray
        ``(N,)`` frame numbers.

    Returns
    -------
    float
        In [0, 1]: over the frames, the median share of pixels whose gray level is more
        than :data:`~bkind_model.frames.windows.FOREGROUND_THRESHOLD` from the frames'
        per-pixel median (a still arena with an animal: a few percent).
    """
    stride = max(1, -(-max(source.height, source.width) // CHANGING_SIDE))
    gray = np.stack([to_gray_numpy(source[int(i)][::stride, ::stride]) for i in frames])
    background = np.median(gray, axis=0)
    return float(np.median((np.abs(gray - background) > FOREGROUND_THRESHOLD).mean((1, 2))))


def pair_disagreement(rig: CameraRig, pixels: np.ndarray) -> np.ndarray:
    """How far two views' sightings of one point are from meeting, for every pair of views.

    Parameters
    ----------
    rig : CameraRig
        The V cameras.
    pixels : ndarray
        ``(N, V, 2)`` the same point in every view, source pixels.

    Returns
    -------
    ndarray
        ``(V, V)`` symmetric, px: for views ``i != j``, the median over the N frames of the
        mean reprojection error in ``i`` and ``j`` of the point triangulated from those two
        views alone (0 where the views' rays meet); NaN on the diagonal.
    """
    n_views = pixels.shape[1]
    out = np.full((n_views, n_views), np.nan)
    for i in range(n_views):
        for j in range(i + 1, n_views):
            weights = np.zeros(pixels.shape[:2])
            weights[:, [i, j]] = 1.0
            points = rig.triangulate_numpy(pixels, weights)
            error = rig.reprojection_error(points, pixels)[:, [i, j]].mean(1)
            out[i, j] = out[j, i] = float(np.nanmedian(error)) if np.isfinite(error).any() else 0
    return out


def check_views_agree(views: PreparedViews, session: Session) -> None:
    """Refuse views that do not see one animal the way the calibration says they should.

    First every view must have a still background (:func:`changing_share` at most
    :data:`CHANGING_LIMIT`: not noise or a test pattern). Then the animal's foreground
    centre in every view, on :data:`AGREEMENT_FRAMES` frames, is triangulated from every
    pair of views (:func:`pair_disagreement`). Two cameras whose
    videos are swapped are found when swapping them makes the views agree
    :data:`AGREEMENT_RATIO` times better (mean over pairs); a view that shows something
    else (another recording, a test pattern), with three or more views, when the pairs
    holding it disagree :data:`AGREEMENT_RATIO` times more than the others. When both
    fit, the one leaving the views in better agreement is named. Either way the
    disagreement must also exceed :data:`AGREEMENT_FLOOR` of the image diagonal: the
    centre of a silhouette is not one 3D point, and an animal that hardly moves cannot
    tell views apart.

    Parameters
    ----------
    views : PreparedViews
        The session's views, prepared.
    session : Session
        Its cameras and videos, in view order.

    Raises
    ------
    ViewsError
        Naming the camera(s) and video(s), with the fix (``--views``, or
        ``--no-view-check`` to go on).
    """
    cameras, videos = list(session.cameras), list(session.videos)
    skip = "pass --no-view-check if the cameras and videos are right"
    t = evenly_spaced(views.n_frames, AGREEMENT_FRAMES)
    sampled = evenly_spaced(views.n_frames, CHANGING_FRAMES)
    for camera, path, offset in zip(cameras, videos, views.offsets, strict=True):
        with open_video(path) as source:
            share = changing_share(source, sampled + offset)
        if share > CHANGING_LIMIT:
            raise ViewsError(
                f"camera {camera.name!r} (video {path}) has no still background: "
                f"{share:.0%} of each frame differs from the video's median (a test pattern, "
                "noise, or a moving camera), so no animal can be found in it.",
                f"Pass the camera's recording of the arena, or {skip}.",
            )
    rig = CameraRig(cameras)
    pixels = centre_pixels(views, t)
    n_views = len(cameras)
    floor = AGREEMENT_FLOOR * max(float(np.hypot(*c.size)) for c in cameras)
    given = pair_disagreement(rig, pixels)
    overall = float(np.nanmean(given))
    # Two explanations of a disagreement, each with the disagreement left once it is
    # removed: two videos swapped, or (three views or more) one view of something else.
    swap, swapped = None, np.inf
    for i in range(n_views):
        for j in range(i + 1, n_views):
            if cameras[i].size == cameras[j].size:
                order = list(range(n_views))
                order[i], order[j] = j, i
                left = float(np.nanmean(pair_disagreement(rig, pixels[:, order])))
                if left < swapped:
                    swap, swapped = (i, j), left
    odd, between, holding = None, np.inf, 0.0
    for v in range(n_views if n_views >= 3 else 0):
        others = [u for u in range(n_views) if u != v]
        left = float(np.nanmean(given[np.ix_(others, others)]))
        if left < between:
            odd, between, holding = v, left, float(np.nanmean(given[v, others]))
    swap_fits = overall > AGREEMENT_RATIO * swapped and overall - swapped > floor / 2
    odd_fits = holding > AGREEMENT_RATIO * between and holding > floor
    if swap is not None and swap_fits and not (odd_fits and between < swapped):
        i, j = swap
        a, b = cameras[i].name, cameras[j].name
        raise ViewsError(
            f"cameras {a!r} and {b!r} look swapped: the animal seen in {videos[i].name} "
            f"(given as {a!r}) and {videos[j].name} (given as {b!r}) fits the calibration "
            f"{overall / max(swapped, 1e-9):.3g} times better the other way round (each pair "
            f"of views' sightings of its centre meet within {swapped:.3g} px swapped, "
            f"{overall:.3g} px as given, mean median).",
            f"Pass --views {a}={videos[j]} {b}={videos[i]}, or {skip}.",
        )
    if odd is not None and odd_fits:
        name = cameras[odd].name
        raise ViewsError(
            f"camera {name!r} (video {videos[odd]}) does not agree with the other cameras: "
            f"the animal's centre there is {holding:.3g} px (median) from where each other "
            f"view and the calibration put it, against {between:.3g} px between the other "
            "views.",
            f"Check that {videos[odd].name} is camera {name!r}'s recording of this session "
            f"and that the calibration's entry for {name!r} is right, or {skip}.",
        )


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
