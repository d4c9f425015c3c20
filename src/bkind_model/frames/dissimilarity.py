"""Structural dissimilarity between two frames: what the decoder must reconstruct.

Only the parts that move between frame ``t`` and frame ``t + gap`` change their local
structure, so ``1 - cs`` (the contrast-structure term of SSIM) lights up on the animal
and stays near zero on the static background and under global lighting changes.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

_C2 = 0.03**2  # SSIM's stabiliser for images in [0, 1]


@functools.lru_cache(maxsize=8)
def _gaussian_kernel(sigma: float, device: str, dtype: torch.dtype) -> Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(device=device, dtype=dtype)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflected borders.

    Parameters
    ----------
    images : Tensor
        ``(B, C, H, W)`` float images.
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    Tensor
        ``(B, C, H, W)`` blurred images.
    """
    kernel = _gaussian_kernel(float(sigma), str(images.device), images.dtype)
    radius = kernel.numel() // 2
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, horizontal, groups=channels)
    return F.conv2d(out, vertical, groups=channels)


def to_gray(frames: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` luma (ITU-R BT.601)."""
    weights = frames.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True)


def structural_dissimilarity(first: Tensor, second: Tensor, sigma: float = 1.5) -> Tensor:
    """``1 - cs`` between two frames, in [0, 2] (0 where the local structure is the same).

    Parameters
    ----------
    first, second : Tensor
        ``(B, 3, H, W)`` RGB frames in [0, 1].
    sigma : float
        Standard deviation of SSIM's Gaussian window, in pixels.

    Returns
    -------
    Tensor
        ``(B, 1, H, W)`` dissimilarity map.
    """
    a, b = to_gray(first), to_gray(second)
    stacked = gaussian_blur(torch.cat([a, b, a * a, b * b, a * b], 1), sigma)
    mu_a, mu_b, aa, bb, ab = stacked.split(1, dim=1)
    var_a = aa - mu_a**2
    var_b = bb - mu_b**2
    cov = ab - mu_a * mu_b
    cs = (2 * cov + _C2) / (var_a + var_b + _C2)
    return 1.0 - cs
