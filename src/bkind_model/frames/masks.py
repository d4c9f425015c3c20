"""Masks against shadows and static clutter: from colour, from a background model, drawn.

Shadows move with the animal, so B-KinD puts keypoints on them. Three kinds of mask:

* **colour** (the IE643 report's method): pixels whose HSV colour lies in a range are the
  animal, everything else is ignored; cleaned with a morphological opening and hole filling
  (the report had none). Works for an animal of a distinct colour.
* **background**: a per-pixel median of frames sampled across the video is the empty
  arena. A pixel darker than the background by a ratio within ``shadow_ratio`` whose
  chromaticity (colour with brightness divided out: hue and saturation) stays within
  ``shadow_chroma`` is shadow; a pixel that changed otherwise is the animal.
* **static**: a region drawn once (arena walls, a cable, a timestamp), ignored on every
  frame.

:class:`FrameMasker` applies them to frames before training and extraction, as set by
:attr:`MaskSettings.use`: ignored pixels are replaced by the background (``"fill"``), set
to black (``"black"``, the report's ``bitwise_and``), or left in the input but removed
from the reconstruction target (``"target"``).

Units: hue in degrees [0, 360), saturation, value and ratios in [0, 1], sizes in pixels of
the frames given.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from bkind_model.config import MaskSettings
from bkind_model.errors import BKindError
from bkind_model.frames.background import SELECTION_LIMIT, Background, changed

#: Labels of :meth:`FrameMasker.labels`.
FLOOR, ANIMAL, SHADOW, STATIC = 0, 1, 2, 3


class MaskError(BKindError):
    """Mask settings or a mask file that cannot work on this video."""


# -- colour ------------------------------------------------------------------------------


def rgb_to_hsv(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(..., 3)`` uint8 RGB -> hue (degrees), saturation and value in [0, 1], float32."""
    rgb = frames.astype(np.float32) / 255.0
    value = rgb.max(axis=-1)
    spread = value - rgb.min(axis=-1)
    saturation = np.where(value > 0, spread / np.maximum(value, 1e-6), 0.0)
    r, g, b = np.moveaxis(rgb, -1, 0)
    safe = np.maximum(spread, 1e-6)
    hue = np.select(
        [value == r, value == g],
        [((g - b) / safe) % 6.0, (b - r) / safe + 2.0],
        (r - g) / safe + 4.0,
    )
    hue = np.where(spread > 0, hue * 60.0, 0.0)
    return hue.astype(np.float32), saturation.astype(np.float32), value


def colour_mask(frames: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """Pixels whose colour is in the settings' HSV range, cleaned.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8 RGB.
    settings : MaskSettings
        ``hue``, ``saturation``, ``value`` and ``cleanup_px``.

    Returns
    -------
    ndarray
        ``(N, H, W)`` bool, True on the animal.
    """
    hue, saturation, value = rgb_to_hsv(frames)
    low, high = settings.hue
    in_hue = (hue >= low) & (hue <= high) if low <= high else (hue >= low) | (hue <= high)
    if high - low >= 360:
        in_hue = np.ones_like(in_hue)
    selected = in_hue & _within(saturation, settings.saturation) & _within(value, settings.value)
    return clean_up(selected, settings.cleanup_px)


def _within(values: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    return (values >= limits[0]) & (values <= limits[1])


def clean_up(masks: np.ndarray, radius: int) -> np.ndarray:
    """Remove specks smaller than ``radius`` (opening) and fill holes, frame by frame.

    Parameters
    ----------
    masks : ndarray
        ``(N, H, W)`` bool.
    radius : int
        Opening radius in pixels (0: no opening).
    """
    structure = np.ones((3, 3), bool)  # square: the corners of a square blob survive
    out = np.empty_like(masks)
    for i, mask in enumerate(masks):
        if radius:
            mask = ndimage.binary_opening(mask, structure, iterations=radius)
        out[i] = ndimage.binary_fill_holes(mask)
    return out


def shadow_and_animal(
    frames: np.ndarray, background: np.ndarray, settings: MaskSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Shadow and animal pixels of frames against a background.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8 RGB.
    background : ndarray
        ``(H, W, 3)`` uint8 RGB of the same size.
    settings : MaskSettings
        ``change``, ``shadow_ratio``, ``shadow_chroma``, ``cleanup_px``.

    Returns
    -------
    shadow, animal : ndarray
        ``(N, H, W)`` bool each.
    """
    pixels = frames.astype(np.float32) + 1.0
    floor = background.astype(np.float32) + 1.0
    brightness, floor_brightness = pixels.sum(-1), floor.sum(-1)
    ratio = brightness / floor_brightness
    chroma = np.abs(pixels / brightness[..., None] - floor / floor_brightness[..., None]).max(-1)
    moved = changed(frames, background, settings.change)
    low, high = settings.shadow_ratio
    shadow = moved & (ratio >= low) & (ratio <= high) & (chroma <= settings.shadow_chroma)
    animal = _grow_back(clean_up(moved & ~shadow, settings.cleanup_px), moved & ~shadow)
    return shadow & ~animal, animal


def _grow_back(cores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The connected parts of ``candidates`` that touch ``cores``, frame by frame.

    The opening that removes specks also removes thin parts (paws, tail); this puts back
    every candidate pixel connected to what survived, and nothing else.
    """
    out = np.empty_like(cores)
    for i, (core, candidate) in enumerate(zip(cores, candidates, strict=True)):
        labels, _ = ndimage.label(candidate | core, np.ones((3, 3), bool))
        out[i] = np.isin(labels, np.unique(labels[core & (labels > 0)]))
    return out


# -- static masks -------------------------------------------------------------------------


def load_static_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A drawn mask: nonzero pixels are ignored on every frame.

    Parameters
    ----------
    path : str or Path
        ``.npy`` or an image file (``.png``, ``.tif`` ...).
    size : tuple of int
        ``(H, W)`` of the video, pixels.

    Returns
    -------
    ndarray
        ``(H, W)`` bool.

    Raises
    ------
    MaskError
        Missing or unreadable file, or a size other than the video's.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            data = np.asarray(Image.open(path))
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise MaskError(
            f"{path}: cannot read the static mask ({str(exc).splitlines()[0][:200]}); use a "
            ".npy array or an image of the video's size."
        ) from exc
    if data.ndim == 3:
        data = data.max(axis=-1)
    if data.ndim != 2:
        raise MaskError(f"{path}: a static mask is one 2D image; this file holds {data.shape}.")
    if data.shape != tuple(size):
        raise MaskError(
            f"{path}: the static mask is {data.shape[1]}x{data.shape[0]} px but the video is "
            f"{size[1]}x{size[0]} px; draw it on this video (or resize it to the video)."
        )
    ignored = data != 0
    if ignored.mean() > 1 - SELECTION_LIMIT:
        raise MaskError(
            f"{path}: the static mask ignores {ignored.mean():.1%} of every frame, so there is "
            "nothing left to train on; mark only what to ignore (nonzero), the rest zero."
        )
    return ignored


def selection_problem(mask: np.ndarray, what: str, widen: str, narrow: str) -> str | None:
    """What is wrong with a selection of ~nothing or ~everything, else None.

    Parameters
    ----------
    mask : ndarray
        Boolean mask of any shape.
    what : str
        What the mask selects, for the message ("The colour range").
    widen, narrow : str
        What to change when it selects nothing, and when it selects everything.

    Returns
    -------
    str or None
        The message, naming the share of pixels selected and the fix.
    """
    fraction = float(np.mean(mask)) if mask.size else 0.0
    if SELECTION_LIMIT <= fraction <= 1 - SELECTION_LIMIT:
        return None
    amount, fix = ("nothing", widen) if fraction < SELECTION_LIMIT else ("everything", narrow)
    return f"{what} selects {amount} ({fraction:.2%} of the pixels); {fix}"


def check_selection(mask: np.ndarray, what: str, hint: str) -> float:
    """Share of pixels selected; a warning naming the fix when it is ~none or ~all.

    Parameters
    ----------
    mask : ndarray
        Boolean mask of any shape.
    what : str
        What the mask selects, for the message ("the colour range").
    hint : str
        What to change.
    """
    problem = selection_problem(mask, what, hint, hint)
    if problem:
        warnings.warn(problem, UserWarning, stacklevel=2)
    return float(np.mean(mask)) if mask.size else 0.0


# -- applying them ------------------------------------------------------------------------


class FrameMasker:
    """Applies mask settings to frames of one size.

    Parameters
    ----------
    settings : MaskSettings
        The method and its thresholds.
    background : ndarray
        ``(H, W, 3)`` uint8 empty arena at the frames' size (fills ignored pixels, and
        finds shadows with the background method).
    static : ndarray, optional
        ``(H, W)`` bool, True where pixels are always ignored.
    """

    def __init__(
        self, settings: MaskSettings, background: np.ndarray, static: np.ndarray | None = None
    ) -> None:
        self.settings = settings
        self.background = background
        self.static = static

    def labels(self, frames: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` uint8: FLOOR, ANIMAL, SHADOW or STATIC for every pixel."""
        out = np.full(frames.shape[:3], FLOOR, np.uint8)
        if self.settings.method == "colour":
            out[colour_mask(frames, self.settings)] = ANIMAL
        else:
            shadow, animal = shadow_and_animal(frames, self.background, self.settings)
            out[animal] = ANIMAL
            out[shadow] = SHADOW
        if self.static is not None:
            out[:, self.static] = STATIC
        return out

    def ignored(self, frames: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` bool: pixels training should not see change in: all but the animal.

        Not only the shadow: a cut through a soft shadow leaves its rim, a sharp outline
        that moves with the animal and draws keypoints (measured in bench/shadows.py), so
        every pixel not on the animal (and the static mask) is ignored.
        """
        return self.labels(frames) != ANIMAL

    def filled(self, frames: np.ndarray, ignored: np.ndarray | None = None) -> np.ndarray:
        """``(N, H, W, 3)`` frames with ignored pixels replaced by the background."""
        ignored = self.ignored(frames) if ignored is None else ignored
        out = frames.copy()
        out[ignored] = np.broadcast_to(self.background, frames.shape)[ignored]
        return out

    def apply(
        self, frames: np.ndarray, ignored: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames as training sees them, and where the animal is.

        Parameters
        ----------
        frames : ndarray
            ``(N, H, W, 3)`` uint8.
        ignored : ndarray, optional
            ``(N, H, W)`` :meth:`ignored` of ``frames``, when already computed.

        Returns
        -------
        frames : ndarray
            ``(N, H, W, 3)`` uint8: ignored pixels filled or blacked out (``use`` "fill" or
            "black"), unchanged with "target".
        animal : ndarray
            ``(N, H, W)`` bool: the pixels not ignored (with "target", the only pixels
            where the reconstruction counts).
        """
        ignored = self.ignored(frames) if ignored is None else ignored
        use = self.settings.use
        if use == "target":
            return frames, ~ignored
        if use == "fill":
            out = self.filled(frames, ignored)
        else:
            out = frames.copy()
            out[ignored] = 0
        return out, ~ignored


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``(H, W)`` mask to ``size`` ``(h, w)``."""
    height, width = mask.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(int), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(int), width - 1)
    return mask[np.ix_(rows, cols)]


def masker_for(
    settings: MaskSettings,
    background: Background,
    samples: np.ndarray,
    source_size: tuple[int, int],
    static: np.ndarray | None = None,
) -> FrameMasker:
    """A masker for frames of the samples' size, from frames sampled across one video.

    Parameters
    ----------
    settings : MaskSettings
        The mask settings (the static mask file is read at the video's size).
    background : Background
        The median of ``samples``.
    samples : ndarray
        ``(N, h, w, 3)`` uint8 frames sampled across the video, at the size to mask.
    source_size : tuple of int
        ``(H, W)`` of the video, pixels.
    static : ndarray, optional
        ``(h, w)`` bool static mask at the samples' size, used instead of reading
        ``settings.static_mask``.

    Raises
    ------
    MaskError
        A static mask that cannot be read or does not fit the video.
    """
    if static is None and settings.static_mask:
        static = resize_mask(
            load_static_mask(settings.static_mask, source_size), samples.shape[1:3]
        )
    masker = FrameMasker(settings, background.image, static)
    if settings.method == "colour":
        check_selection(
            masker.labels(samples) == ANIMAL,
            "The colour range",
            "widen it (or narrow it) until it covers the animal and little else.",
        )
    return masker
