"""Follow the animal with a crop window, so the model sees it large at little cost.

In a lab video the animal covers a few percent of the frame. Showing the model a square
window around the animal, instead of the whole letterboxed frame, multiplies the pixels
that fall on the animal by ten or more at the same compute: keypoints get sharper and
training converges in minutes on a CPU. The window follows the centre of the foreground
(frame minus a median background); both frames of a training pair share the window of
the first, so the background stays static between them, as B-KinD needs.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import ndimage

from bkind_model.errors import BKindError
from bkind_model.frames.background import median_background, to_gray
from bkind_model.frames.letterbox import Letterbox, resize_frames
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.video import VideoSource

#: Gray-level difference (0-1) from the background that counts as foreground.
FOREGROUND_THRESHOLD = 0.1
#: Crop side relative to the animal's longest extent (room for any orientation).
CROP_MARGIN = 1.3
_EIGHT_CONNECTED = np.ones((3, 3), bool)


class NoForegroundError(BKindError):
    """Nothing in the sampled frames differs from the background."""


def foreground_weights(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Difference from the background on each frame's largest foreground blob, else 0.

    Only the largest 8-connected blob is kept (its thin tail included), so specks of
    noise and flicker along the arena's rim do not pull the weights off the animal.

    Parameters
    ----------
    frames : ndarray
        ``(B, H, W, 3)`` uint8 frames.
    background : ndarray
        ``(H, W)`` gray background in [0, 1].

    Returns
    -------
    ndarray
        ``(B, H, W)`` float32 weights (gray difference, 0 off the animal's blob).
    """
    diff = np.abs(to_gray(frames) - background)
    weights = np.zeros_like(diff)
    for i, frame_diff in enumerate(diff):
        labels, count = ndimage.label(frame_diff > FOREGROUND_THRESHOLD, _EIGHT_CONNECTED)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = labels == int(np.argmax(sizes))
        weights[i][keep] = frame_diff[keep]
    return weights


def on_foreground(
    frames: np.ndarray, background: np.ndarray, points: np.ndarray, radius: float
) -> np.ndarray:
    """Whether points lie on (or within ``radius`` of) each frame's animal blob.

    Parameters
    ----------
    frames : ndarray
        ``(B, H, W, 3)`` uint8 frames.
    background : ndarray
        ``(H, W)`` gray background in [0, 1].
    points : ndarray
        ``(B, K, 2)`` (x, y) in the frames' pixels; NaN: not on it.
    radius : float
        Distance from the blob that still counts, px.

    Returns
    -------
    ndarray
        ``(B, K)`` bool.
    """
    blobs = foreground_weights(frames, background) > 0
    height, width = blobs.shape[1:]
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disc = dy**2 + dx**2 <= radius**2  # pixels within ``radius`` of a point's pixel
    finite = np.isfinite(points).all(axis=-1)
    safe = np.round(np.where(finite[..., None], points, 0.0)).astype(int)
    x = np.clip(safe[..., 0], 0, width - 1)[..., None]  # a point's pixel, inside the frame
    y = np.clip(safe[..., 1], 0, height - 1)[..., None]
    # Clipping keeps a neighbour inside the frame and never farther than it was.
    cols = np.clip(x + dx[disc], 0, width - 1)  # (B, K, M)
    rows = np.clip(y + dy[disc], 0, height - 1)
    near = blobs[np.arange(len(blobs))[:, None, None], rows, cols].any(axis=-1)
    return near & finite


def foreground_centres(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Centre of the foreground of each frame.

    Parameters
    ----------
    frames : ndarray
        ``(B, H, W, 3)`` uint8 frames.
    background : ndarray
        ``(H, W)`` gray background of the same size.

    Returns
    -------
    ndarray
        ``(B, 2)`` (x, y) in pixels of these frames; NaN where nothing is foreground.
    """
    weights = foreground_weights(frames, background)
    total = weights.sum(axis=(1, 2))
    height, width = background.shape
    x = (weights.sum(axis=1) * np.arange(width)).sum(axis=1)
    y = (weights.sum(axis=2) * np.arange(height)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.stack([x / total, y / total], axis=1)
    centres[total < 1.0] = np.nan  # less than a few pixels of foreground
    return centres


def fill_missing(centres: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Replace NaN centres by the last valid one before (or after) them, else ``default``.

    Parameters
    ----------
    centres : ndarray
        ``(T, 2)`` centres with NaN rows.
    default : ndarray
        ``(2,)`` used when no frame has a centre (e.g. the frame centre).
    """
    out = np.array(centres, dtype=np.float64)
    valid = ~np.isnan(out[:, 0])
    if not valid.any():
        out[:] = default
        return out
    index = np.where(valid, np.arange(len(out)), -1)
    last = np.maximum.accumulate(index)
    first_valid = int(np.argmax(valid))
    last[last < 0] = first_valid
    return out[last]


def animal_extent(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Longest extent of the foreground of each frame (pixels of these frames).

    Returns
    -------
    ndarray
        ``(B,)`` distance between the extreme foreground pixels along the foreground's
        major axis; NaN for frames without foreground.
    """
    extents = np.full(len(frames), np.nan)
    for i, weights in enumerate(foreground_weights(frames, background)):
        ys, xs = np.nonzero(weights)
        if len(xs) < 5:
            continue
        points = np.column_stack([xs, ys]).astype(np.float64)
        points -= points.mean(0)
        _, vectors = np.linalg.eigh(points.T @ points)
        along = points @ vectors[:, 1]
        extents[i] = np.percentile(along, 99) - np.percentile(along, 1) + 1
    return extents


def suggest_crop_size(frames: np.ndarray, background: np.ndarray, scale: float = 1.0) -> float:
    """Side of a square crop that holds the animal in any orientation, in source pixels.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8 frames sampled across the video (resized by ``scale``).
    background : ndarray
        ``(H, W)`` their gray median background.
    scale : float
        Pixels of ``frames`` per source pixel.

    Raises
    ------
    NoForegroundError
        When no sampled frame has foreground (an empty arena, or an animal that never
        moves, which the median absorbs into the background).
    """
    extents = animal_extent(frames, background)
    if np.isnan(extents).all():
        raise NoForegroundError(
            "No animal found: the sampled frames do not differ from their median. "
            "Set a crop size by hand (crop_size) or train without a crop (crop_size=0)."
        )
    return float(CROP_MARGIN * np.nanpercentile(extents, 90) / scale)


def crop_windows(
    frames: np.ndarray,
    centres: np.ndarray,
    side: int,
    jitter: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut square windows centred on given points; outside the frame repeats its border.

    Parameters
    ----------
    frames : ndarray
        ``(B, H, W, C)`` frames.
    centres : ndarray
        ``(B, 2)`` (x, y) window centres in pixels of ``frames``.
    side : int
        Window side in pixels.
    jitter : ndarray, optional
        ``(B, 2)`` integer shifts of the windows, pixels.

    Returns
    -------
    crops : ndarray
        ``(B, side, side, C)``.
    offsets : ndarray
        ``(B, 2)`` (x0, y0) top-left corner of each window in pixels of ``frames``.
    """
    batch, height, width = frames.shape[:3]
    offsets = np.round(np.asarray(centres, dtype=np.float64) - (side - 1) / 2.0).astype(int)
    if jitter is not None:
        offsets = offsets + jitter
    crops = np.empty((batch, side, side, frames.shape[3]), frames.dtype)
    for i, (x0, y0) in enumerate(offsets):
        rows = np.clip(np.arange(y0, y0 + side), 0, height - 1)
        cols = np.clip(np.arange(x0, x0 + side), 0, width - 1)
        if 0 <= y0 and y0 + side <= height and 0 <= x0 and x0 + side <= width:
            crops[i] = frames[i, y0 : y0 + side, x0 : x0 + side]
        else:
            crops[i] = frames[i][np.ix_(rows, cols)]
    return crops, offsets.astype(np.float64)


def to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float in [0, 1] on ``device``.

    The result is channels-last in memory. To a GPU the pixels travel from page-locked
    memory, asynchronously, while the GPU finishes its previous work.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    if torch.device(device).type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    else:
        tensor = tensor.to(device)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


class InputWindows:
    """Turns resized frames into model inputs: animal-centred crops or whole frames.

    Parameters
    ----------
    letterbox : Letterbox
        The scaling and window size (:meth:`Letterbox.crop` or :meth:`Letterbox.fit`).
    background : ndarray, optional
        ``(h, w)`` gray background at :attr:`Letterbox.resized_size`; needed for crops.
    """

    def __init__(self, letterbox: Letterbox, background: np.ndarray | None = None) -> None:
        if letterbox.is_crop and background is None:
            raise ValueError("crops need a background to find the animal")
        self.letterbox = letterbox
        self.background = background

    def centres(self, frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """``(B, 2)`` animal centres of resized frames; gaps take the last seen centre.

        Parameters
        ----------
        frames : ndarray
            ``(B, h, w, 3)`` uint8 resized frames.
        previous : ndarray, optional
            ``(2,)`` centre before this batch (for a batch starting without an animal).
        """
        if self.background is None:
            raise ValueError("finding the animal needs a background")
        height, width = frames.shape[1:3]
        found = foreground_centres(frames, self.background)
        default = previous if previous is not None else np.array([width / 2, height / 2])
        if previous is not None and np.isnan(found[0, 0]):
            found[0] = previous
        return fill_missing(found, default)

    def inputs(
        self,
        frames: np.ndarray,
        centres: np.ndarray | None = None,
        jitter: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Model inputs and where their windows lie.

        Parameters
        ----------
        frames : ndarray
            ``(B, h, w, 3)`` uint8 resized frames.
        centres : ndarray, optional
            ``(B, 2)`` window centres (crops only; :meth:`centres` when None).
        jitter : ndarray, optional
            ``(B, 2)`` integer window shifts, resized pixels (crops only).
        device : torch.device or str
            Where the tensor goes.

        Returns
        -------
        inputs : Tensor
            ``(B, 3, H, W)`` float in [0, 1].
        offsets : ndarray
            ``(B, 2)`` (x0, y0) of each window in resized pixels, for
            :meth:`Letterbox.to_source`.
        """
        box = self.letterbox
        if not box.is_crop:
            offsets = np.tile([-box.pad[1], -box.pad[0]], (len(frames), 1)).astype(np.float64)
            return box.pad_resized(to_tensor(frames, device)), offsets
        if centres is None:
            centres = self.centres(frames)
        crops, offsets = crop_windows(frames, centres, box.input_size[0], jitter)
        return to_tensor(crops, device), offsets

    def background_windows(self, offsets: np.ndarray) -> torch.Tensor:
        """``(B, 1, H, W)`` the background seen through the given windows, in [0, 1]."""
        box = self.letterbox
        if self.background is None:
            raise ValueError("no background")
        side = box.input_size
        gray = np.repeat(self.background[None, :, :, None], len(offsets), axis=0)
        if not box.is_crop:
            return box.pad_resized(torch.from_numpy(gray).permute(0, 3, 1, 2))
        centres = offsets + (side[0] - 1) / 2.0
        crops, _ = crop_windows(gray, centres, side[0])
        return torch.from_numpy(crops).permute(0, 3, 1, 2)


def measure_crop_size(source: VideoSource, n_samples: int = 60, long_side: int = 256) -> float:
    """Crop side for a video, in source pixels; 0 when the whole frame should be used.

    Samples frames across the video, subtracts their median and measures the animal
    (:func:`suggest_crop_size`). When the animal fills most of the frame, or nothing
    moves, a crop brings nothing and 0 is returned (with a warning in the second case).

    Parameters
    ----------
    source : VideoSource
        The video.
    n_samples : int
        Frames sampled evenly across the video.
    long_side : int
        Frames are measured at this long side, pixels.
    """
    scale = min(1.0, long_side / max(source.height, source.width))
    box = Letterbox((source.height, source.width), (source.height, source.width), scale, (0, 0))
    # a frame at a time: 60 frames of 4000x4000 px would take 2.9 GB at once
    indices = [int(i) for i in evenly_spaced(source.n_frames, n_samples)]
    small = np.concatenate([resize_frames(source[i : i + 1], box.resized_size) for i in indices])
    try:
        crop = suggest_crop_size(small, median_background(small).gray, scale)
    except NoForegroundError as exc:
        warnings.warn(f"{source.path}: {exc} Using the whole frame.", stacklevel=2)
        return 0.0
    return 0.0 if crop >= 0.75 * min(source.height, source.width) else round(crop, 1)
