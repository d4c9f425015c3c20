"""One way from video frames to model inputs, for training, prediction and previews.

:class:`FramePipeline` holds what turns frames at model scale into inputs: the median
background (to find the animal), the shadow and static masks, and the window that
follows the animal. It is built from frames sampled across the video by
:func:`pipeline_from_samples`, the one place where training
(:func:`prepare_video`), the predictor and the napari masks widget get theirs, so what a
preview shows is what training applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bkind_model.config import AUTO_IMAGE_SIZES, SOURCE_PX_PER_INPUT_PX, Config, MaskSettings
from bkind_model.errors import ConfigError
from bkind_model.frames.background import Background, median_background
from bkind_model.frames.cache import FrameCache
from bkind_model.frames.letterbox import Letterbox, resize_frames
from bkind_model.frames.masks import FrameMasker, masker_for
from bkind_model.frames.sampling import evenly_spaced, sample_frames
from bkind_model.frames.windows import InputWindows, fill_missing, foreground_centres
from bkind_model.io.video import VideoSource

#: Frames sampled across a video for its background and masks.
BACKGROUND_SAMPLES = 100
#: Frames whose animal centres are found at once while preparing a video.
_CENTRE_CHUNK = 256


def auto_image_size(config: Config, source_size: tuple[int, int]) -> int:
    """The input side for ``config.image_size`` None, from what the window shows.

    The window's side in source pixels (``crop_size``, or the frame's long side for the
    whole frame) divided by :data:`~bkind_model.config.SOURCE_PX_PER_INPUT_PX`, rounded
    to a multiple of 32 and kept within :data:`~bkind_model.config.AUTO_IMAGE_SIZES`: a
    large animal in a large video gets more input pixels, a small one is not blown up.

    Parameters
    ----------
    config : Config
        With ``crop_size`` resolved.
    source_size : tuple of int
        ``(height, width)`` of the video, px.
    """
    side = config.crop_size or max(source_size)
    low, high = AUTO_IMAGE_SIZES
    return int(min(high, max(low, 32 * round(side / SOURCE_PX_PER_INPUT_PX / 32))))


def letterbox_for(config: Config, source_size: tuple[int, int]) -> Letterbox:
    """The model's view of frames of ``source_size`` ``(H, W)`` under ``config``.

    A square window of ``config.crop_size`` source pixels that follows the animal, or the
    whole frame letterboxed when ``crop_size`` is 0 (it must be resolved, not None), at
    ``config.image_size`` input pixels (:func:`auto_image_size` when None).
    """
    if config.crop_size is None:
        raise ConfigError("crop_size must be measured or set before frames are windowed.")
    if config.image_size is None:
        config = config.replace(image_size=auto_image_size(config, source_size))
    assert config.image_size is not None
    if config.crop_size:
        if config.crop_size > max(source_size):
            raise ConfigError(
                f"crop_size {config.crop_size:g} px is larger than the frames "
                f"({source_size[1]}x{source_size[0]} px); give a crop that fits, or 0 for the "
                "whole frame."
            )
        return Letterbox.crop(source_size, config.crop_size, config.image_size)
    return Letterbox.fit(source_size, config.image_size, config.input_multiple)


@dataclass
class FramePipeline:
    """Frames at model scale -> model inputs, masked as configured.

    Attributes
    ----------
    letterbox : Letterbox
        Scaling and window size.
    background : Background
        The empty arena at :attr:`Letterbox.resized_size`.
    windows : InputWindows
        Cuts the windows (finds the animal against ``background.gray``).
    masker : FrameMasker or None
        Shadow and static masks at the same size (``config.masks``); None without masks.
    """

    letterbox: Letterbox
    background: Background
    windows: InputWindows
    masker: FrameMasker | None = None

    def resize(self, frames: np.ndarray) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 source frames -> ``(B, h, w, 3)`` at model scale."""
        return resize_frames(frames, self.letterbox.resized_size)

    def labels(self, frames: np.ndarray) -> np.ndarray | None:
        """``(B, h, w)`` uint8 mask labels (floor, animal, shadow, static); None unmasked."""
        return None if self.masker is None else self.masker.labels(frames)

    def unshadowed(self, frames: np.ndarray, ignored: np.ndarray | None = None) -> np.ndarray:
        """Frames with shadows and static clutter filled with the background, to find the animal.

        Parameters
        ----------
        frames : ndarray
            ``(B, h, w, 3)`` uint8 at model scale.
        ignored : ndarray, optional
            ``(B, h, w)`` bool :meth:`FrameMasker.ignored` of ``frames``, if known.
        """
        return frames if self.masker is None else self.masker.filled(frames, ignored)

    def inputs(
        self,
        frames: np.ndarray,
        centres: np.ndarray | None = None,
        jitter: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        previous: np.ndarray | None = None,
    ) -> Inputs:
        """Model inputs of frames at model scale, masked as configured.

        Parameters
        ----------
        frames : ndarray
            ``(B, h, w, 3)`` uint8 at model scale.
        centres : ndarray, optional
            ``(B, 2)`` window centres in pixels of ``frames`` (found when None).
        jitter : ndarray, optional
            ``(B, 2)`` integer window shifts, pixels of ``frames``.
        device : torch.device or str
            Where the tensors go.
        previous : ndarray, optional
            ``(2,)`` centre before this batch, when centres are found (streams).
        """
        ignored = None
        if self.masker is not None:
            ignored = self.masker.ignored(frames)  # labelled once for masking and finding
        if centres is None and self.letterbox.is_crop:
            centres = self.windows.centres(self.unshadowed(frames, ignored), previous)
        if self.masker is None or ignored is None:
            images, offsets = self.windows.inputs(frames, centres, jitter, device)
            return Inputs(images, offsets, None, centres)
        masked, animal = self.masker.apply(frames, ignored)
        # The animal mask travels as a fourth channel so it is cut through the same window.
        stacked = np.concatenate([masked, animal[..., None].astype(np.uint8) * 255], axis=-1)
        images, offsets = self.windows.inputs(stacked, centres, jitter, device)
        return Inputs(images[:, :3], offsets, images[:, 3:], centres)


@dataclass
class Inputs:
    """A batch of model inputs and where their windows lie.

    Attributes
    ----------
    images : Tensor
        ``(B, 3, H, W)`` in [0, 1].
    offsets : ndarray
        ``(B, 2)`` window corners (x0, y0), pixels at model scale (for
        :meth:`Letterbox.to_source`).
    animal : Tensor or None
        ``(B, 1, H, W)`` 1 on the animal, 0 on ignored pixels; None without masks.
    centres : ndarray or None
        ``(B, 2)`` window centres used, pixels at model scale; None for whole frames.
    """

    images: torch.Tensor
    offsets: np.ndarray
    animal: torch.Tensor | None
    centres: np.ndarray | None


def pipeline_from_samples(
    letterbox: Letterbox,
    samples: np.ndarray,
    masks: MaskSettings | None,
    static: np.ndarray | None = None,
) -> FramePipeline:
    """The pipeline of one video, from frames sampled across it at model scale.

    Parameters
    ----------
    letterbox : Letterbox
        The model's view of the video.
    samples : ndarray
        ``(N, h, w, 3)`` uint8 frames at :attr:`Letterbox.resized_size`, spread across the
        video (:func:`sample_resized`).
    masks : MaskSettings or None
        Mask settings; None for no masks.
    static : ndarray, optional
        ``(h, w)`` bool static mask at model scale, instead of reading
        ``masks.static_mask`` (a checkpoint carries its own).

    Raises
    ------
    MaskError
        A static mask that cannot be read or does not fit the video.
    """
    change = masks.change if masks is not None else 0.1
    check = masks is not None and masks.method == "background"
    background = median_background(samples, change, check=check)
    masker = None
    if masks is not None:
        masker = masker_for(masks, background, samples, letterbox.source_size, static)
    return FramePipeline(letterbox, background, InputWindows(letterbox, background.gray), masker)


def sample_resized(
    source: VideoSource,
    letterbox: Letterbox,
    n_samples: int = BACKGROUND_SAMPLES,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Frames spread across a video, at model scale (as the frame cache holds them).

    Returns
    -------
    ndarray
        ``(n, h, w, 3)`` uint8 at :attr:`Letterbox.resized_size`.
    """
    return resize_frames(
        sample_frames(source, n_samples, progress=progress), letterbox.resized_size
    )


@dataclass
class PreparedVideo:
    """One video ready for training: cached frames, its pipeline, the animal's path.

    Attributes
    ----------
    path : Path
        The source video.
    frames : FrameCache
        Frames at model scale, ``(N, h, w, 3)`` uint8.
    fps : float
        Frames per second of the source.
    gap : int
        Frame gap in frames for this video.
    pipeline : FramePipeline
        Background, masks and windows of this video.
    centres : ndarray
        ``(N, 2)`` animal centre (x, y) of every cached frame, pixels at model scale.
    """

    path: Path
    frames: FrameCache
    fps: float
    gap: int
    pipeline: FramePipeline
    centres: np.ndarray

    def inputs(
        self,
        index: np.ndarray,
        jitter: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        centres: np.ndarray | None = None,
    ) -> Inputs:
        """Model inputs of cached frames (see :meth:`FramePipeline.inputs`).

        Parameters
        ----------
        index : ndarray
            ``(B,)`` frame numbers.
        jitter : ndarray, optional
            ``(B, 2)`` window shifts, pixels at model scale.
        device : torch.device or str
            Where the tensors go.
        centres : ndarray, optional
            ``(B, 2)`` window centres (default: the animal in frames ``index``).
        """
        centres = self.centres[index] if centres is None else centres
        return self.pipeline.inputs(self.frames[index], centres, jitter, device)


def prepare_video(
    source: VideoSource,
    letterbox: Letterbox,
    config: Config,
    *,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PreparedVideo:
    """Cache a video's frames at model scale, build its pipeline, find the animal throughout.

    Parameters
    ----------
    source : VideoSource
        The video.
    letterbox : Letterbox
        The model's view (:func:`letterbox_for`).
    config : Config
        Frame gap (resolved) and mask settings.
    cache_dir : str or Path, optional
        Where the frame cache goes.
    progress : callable, optional
        ``f(done, total, message)`` while frames are cached.

    Raises
    ------
    ConfigError
        A frame gap not shorter than the video.
    """
    gap = config.gap_frames(source.fps)
    if gap >= source.n_frames:
        raise ConfigError(
            f"{source.path}: frame gap {gap} frames is not shorter than the video "
            f"({source.n_frames} frames); choose a smaller gap."
        )
    cache = FrameCache.build(
        source, size=letterbox.resized_size, cache_dir=cache_dir, progress=progress
    )
    samples = cache[evenly_spaced(len(cache), BACKGROUND_SAMPLES)]
    pipeline = pipeline_from_samples(letterbox, samples, config.masks)
    found = [
        foreground_centres(
            pipeline.unshadowed(cache[i : i + _CENTRE_CHUNK]), pipeline.background.gray
        )
        for i in range(0, len(cache), _CENTRE_CHUNK)
    ]
    height, width = letterbox.resized_size
    centres = fill_missing(np.concatenate(found), np.array([width / 2, height / 2]))
    return PreparedVideo(source.path, cache, source.fps, gap, pipeline, centres)
