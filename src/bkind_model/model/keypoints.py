"""Keypoint geometry: heatmaps to keypoints (soft-argmax), keypoints to Gaussians.

Coordinates inside the model are normalised: ``u = 2 * (x + 0.5) / W - 1`` so that
``-1`` and ``+1`` are the outer edges of the first and last pixel (the same convention as
``torch.nn.functional.grid_sample`` with ``align_corners=False``). Pixel coordinates
``(x, y)`` put the centre of the top-left pixel at ``(0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def normalised_grid(height: int, width: int, device=None, dtype=None) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates of an ``(height, width)`` map in [-1, 1] units.

    Returns
    -------
    xs : Tensor
        ``(width,)`` x coordinate of each column.
    ys : Tensor
        ``(height,)`` y coordinate of each row.
    """
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * (2.0 / width) - 1.0
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * (2.0 / height) - 1.0
    return xs, ys


@dataclass
class Keypoints:
    """Keypoints read off heatmaps, in normalised units.

    Attributes
    ----------
    mean : Tensor
        ``(B, K, 2)`` keypoint positions ``(u, v)`` in [-1, 1] (x first).
    covariance : Tensor
        ``(B, K, 2, 2)`` spatial covariance of each softmaxed heatmap, in normalised
        units squared.
    confidence : Tensor
        ``(B, K)`` peak of each softmaxed heatmap times its number of pixels: 1 for a
        uniform map, larger for sharper maps.
    probability : Tensor
        ``(B, K, H, W)`` the softmaxed heatmaps (each sums to 1).
    """

    mean: Tensor
    covariance: Tensor
    confidence: Tensor
    probability: Tensor


def soft_argmax(logits: Tensor) -> Keypoints:
    """Turn heatmap logits into keypoints with covariance and confidence.

    Parameters
    ----------
    logits : Tensor
        ``(B, K, H, W)`` unnormalised heatmaps.

    Returns
    -------
    Keypoints
        Means, covariances and confidences in normalised units.
    """
    batch, k, height, width = logits.shape
    prob = torch.softmax(logits.flatten(2).float(), dim=-1).view(batch, k, height, width)
    xs, ys = normalised_grid(height, width, logits.device, prob.dtype)
    px = prob.sum(dim=2)  # (B, K, W) marginal over rows
    py = prob.sum(dim=3)  # (B, K, H)
    mx = (px * xs).sum(-1)
    my = (py * ys).sum(-1)
    dx = xs.view(1, 1, width) - mx.unsqueeze(-1)
    dy = ys.view(1, 1, height) - my.unsqueeze(-1)
    vxx = (px * dx * dx).sum(-1)
    vyy = (py * dy * dy).sum(-1)
    vxy = torch.einsum("bkhw,bkh,bkw->bk", prob, dy, dx)
    cov = torch.stack([torch.stack([vxx, vxy], -1), torch.stack([vxy, vyy], -1)], -2)
    confidence = prob.flatten(2).amax(-1) * (height * width)
    return Keypoints(torch.stack([mx, my], -1), cov, confidence, prob)


def render_gaussians(mean: Tensor, std: float, height: int, width: int) -> Tensor:
    """Render one isotropic Gaussian per keypoint.

    Parameters
    ----------
    mean : Tensor
        ``(B, K, 2)`` centres ``(u, v)`` in normalised units.
    std : float
        Standard deviation in normalised units (1.0 = half the image width).
    height, width : int
        Size of the output maps in pixels.

    Returns
    -------
    Tensor
        ``(B, K, height, width)`` maps with peak 1 at each centre.
    """
    xs, ys = normalised_grid(height, width, mean.device, mean.dtype)
    gx = torch.exp(-((xs.view(1, 1, width) - mean[..., 0:1]) ** 2) / (2 * std**2))
    gy = torch.exp(-((ys.view(1, 1, height) - mean[..., 1:2]) ** 2) / (2 * std**2))
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)
