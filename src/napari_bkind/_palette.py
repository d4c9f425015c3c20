"""Keypoint colours in napari's terms: one stable colour per keypoint id."""

from __future__ import annotations

import numpy as np
from napari.utils.colormaps import Colormap

from bkind_model.io.overlay import keypoint_colors


def rgba(n_keypoints: int, alpha: float = 1.0) -> np.ndarray:
    """``(K, 4)`` float RGBA in [0, 1] of each keypoint id (the engine's palette)."""
    colors = keypoint_colors(n_keypoints).astype(np.float32) / 255.0
    return np.column_stack([colors, np.full(n_keypoints, alpha, np.float32)])


def keypoint_colormap(n_keypoints: int) -> Colormap:
    """A stepwise colormap giving value ``(k + 0.5) / K`` the colour of keypoint ``k``."""
    return Colormap(
        colors=rgba(n_keypoints),
        controls=np.linspace(0.0, 1.0, n_keypoints + 1),
        interpolation="zero",
        name=f"bkind keypoints {n_keypoints}",
    )
