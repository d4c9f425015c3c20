"""How frames are scaled (aspect ratio kept) and windowed into the model's input.

One geometry for every path: the frame cache, the predictor and crop measurement resize
with :func:`resize_frames`, and :class:`Letterbox` maps model coordinates back to source
pixels. Pixel coordinates ``(x, y)`` put the centre of the top-left pixel at ``(0, 0)``;
normalised model coordinates are described in :mod:`bkind_model.model.keypoints`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 frames with antialiasing, keeping them uint8.

    Uses torch's uint8 antialiased bilinear path on the CPU, about three times faster
    than resizing floats.

    Parameters
    ----------
    frames : ndarray
        ``(B, H, W, 3)`` uint8 RGB frames.
    size : tuple of int
        ``(h, w)`` target size, pixels.

    Returns
    -------
    ndarray
        ``(B, h, w, 3)`` uint8.
    """
    if tuple(frames.shape[1:3]) == tuple(size):
        return np.ascontiguousarray(frames)
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = F.interpolate(tensor, size=tuple(size), mode="bilinear", antialias=True)
    return resized.permute(0, 2, 3, 1).contiguous().numpy()


@dataclass(frozen=True)
class Letterbox:
    """How frames are scaled (aspect ratio kept) and windowed into the model's input.

    Frames are first resized by ``scale`` to :attr:`resized_size`. The input is then a
    window of ``input_size`` over the resized frame whose top-left corner lies at an
    *offset* ``(x0, y0)`` in resized pixels: the whole frame padded around (letterbox,
    offset ``-pad``), or a crop that follows the animal (a different offset per frame).
    Pixel coordinates put the centre of the top-left pixel at ``(0, 0)``.

    Attributes
    ----------
    source_size : tuple of int
        ``(height, width)`` of the original frames in pixels.
    input_size : tuple of int
        ``(height, width)`` of the model input in pixels.
    scale : float
        Resized pixels per source pixel.
    pad : tuple of int
        ``(pad_y, pad_x)``: rows above and columns left of the resized frame in the
        letterboxed input (``(0, 0)`` for crops).
    """

    source_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: float
    pad: tuple[int, int]

    @classmethod
    def fit(cls, source_size: tuple[int, int], long_side: int, multiple: int = 16) -> Letterbox:
        """Scale a frame so its long side is ``long_side`` pixels; pad to a multiple.

        Parameters
        ----------
        source_size : tuple of int
            ``(height, width)`` of the frames in pixels.
        long_side : int
            Target length of the longer side, in input pixels.
        multiple : int
            Both input sides are rounded up to a multiple of this (the encoder's stride).
        """
        height, width = source_size
        scale = long_side / max(height, width)
        resized = (round(height * scale), round(width * scale))
        padded = (-(-resized[0] // multiple) * multiple, -(-resized[1] // multiple) * multiple)
        pad = ((padded[0] - resized[0]) // 2, (padded[1] - resized[1]) // 2)
        return cls((height, width), padded, scale, pad)

    @classmethod
    def crop(cls, source_size: tuple[int, int], crop_px: float, input_side: int) -> Letterbox:
        """Square crops of ``crop_px`` source pixels shown to the model at ``input_side``.

        Parameters
        ----------
        source_size : tuple of int
            ``(height, width)`` of the frames in pixels.
        crop_px : float
            Side of the crop window in source pixels.
        input_side : int
            Side of the model input in pixels.
        """
        scale = min(1.0, input_side / crop_px)
        return cls(
            (int(source_size[0]), int(source_size[1])), (input_side, input_side), scale, (0, 0)
        )

    @property
    def is_crop(self) -> bool:
        """Whether the input is a window smaller than the resized frame."""
        resized = self.resized_size
        return self.input_size[0] < resized[0] or self.input_size[1] < resized[1]

    @property
    def resized_size(self) -> tuple[int, int]:
        """``(height, width)`` of the resized frames, in pixels."""
        return (round(self.source_size[0] * self.scale), round(self.source_size[1] * self.scale))

    def apply(self, frames: Tensor) -> Tensor:
        """Resize and pad frames (letterbox mode).

        Parameters
        ----------
        frames : Tensor
            ``(B, C, H, W)`` float frames of the source size.

        Returns
        -------
        Tensor
            ``(B, C, h, w)`` frames of ``input_size``; padding replicates the border.
        """
        return self.pad_resized(self.resize(frames))

    def resize(self, frames: Tensor) -> Tensor:
        """``(B, C, H, W)`` source frames -> ``(B, C, h', w')`` of :attr:`resized_size`."""
        return F.interpolate(frames, size=self.resized_size, mode="bilinear", antialias=True)

    def pad_resized(self, resized: Tensor) -> Tensor:
        """Pad frames already resized to :attr:`resized_size` up to :attr:`input_size`.

        Parameters
        ----------
        resized : Tensor
            ``(B, C, h', w')`` frames of ``resized_size``.

        Returns
        -------
        Tensor
            ``(B, C, h, w)`` frames of ``input_size``; padding replicates the border.
        """
        top, left = self.pad
        bottom = self.input_size[0] - self.resized_size[0] - top
        right = self.input_size[1] - self.resized_size[1] - left
        return F.pad(resized, (left, right, top, bottom), mode="replicate")

    def _axis_scales(self) -> np.ndarray:
        """Exact resized pixels per source pixel along (x, y) after rounding."""
        return np.array(
            [
                self.resized_size[1] / self.source_size[1],
                self.resized_size[0] / self.source_size[0],
            ]
        )

    def _offsets(self, offsets: np.ndarray | None) -> np.ndarray:
        if offsets is None:
            return -np.array([self.pad[1], self.pad[0]], dtype=np.float64)
        return np.asarray(offsets, dtype=np.float64)

    def to_source(self, uv: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """Normalised input coordinates -> source pixels.

        Parameters
        ----------
        uv : ndarray
            ``(B, K, 2)`` or ``(..., 2)`` coordinates ``(u, v)`` in [-1, 1] over the input.
        offsets : ndarray, optional
            ``(B, 1, 2)`` or broadcastable ``(x0, y0)`` of each input's window in resized
            pixels; the letterbox offset ``-pad`` when None.

        Returns
        -------
        ndarray
            Coordinates ``(x, y)`` in source pixels, shaped like ``uv``.
        """
        size = np.array([self.input_size[1], self.input_size[0]], dtype=np.float64)
        edge = (np.asarray(uv, dtype=np.float64) + 1.0) * size / 2.0  # from the window's edge
        return (edge + self._offsets(offsets)) / self._axis_scales() - 0.5

    def covariance_to_source(self, cov: np.ndarray) -> np.ndarray:
        """Covariances in normalised input units squared -> source pixels squared.

        Parameters
        ----------
        cov : ndarray
            ``(..., 2, 2)`` covariance over ``(u, v)``.

        Returns
        -------
        ndarray
            ``(..., 2, 2)`` covariance over ``(x, y)`` in px^2.
        """
        size = np.array([self.input_size[1], self.input_size[0]], dtype=np.float64)
        jac = size / 2.0 / self._axis_scales()  # source px per normalised unit, per axis
        return np.asarray(cov) * jac[:, None] * jac[None, :]

    def to_dict(self) -> dict:
        """Plain dict (saved in checkpoints and results)."""
        return {
            "source_size": list(self.source_size),
            "input_size": list(self.input_size),
            "scale": self.scale,
            "pad": list(self.pad),
        }

    @classmethod
    def from_dict(cls, values: dict) -> Letterbox:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(values["source_size"]),
            tuple(values["input_size"]),
            float(values["scale"]),
            tuple(values["pad"]),
        )
