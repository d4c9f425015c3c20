"""Cheap signals that tell, during training, whether keypoints have converged.

Users of the original method trained for days without knowing. Every few hundred steps
we look at a fixed set of preview frames and measure:

* sharpness: the spread of each softmaxed heatmap (input pixels; small = sharp);
* stability: how far the preview keypoints moved since the previous check (input pixels);
* on-animal: the fraction of keypoints lying on foreground pixels (frame differs from a
  median background), i.e. on the animal rather than on the static arena.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bkind_model.frames.dissimilarity import to_gray
from bkind_model.frames.windows import FOREGROUND_THRESHOLD

CONVERGED = "converged"
IMPROVING = "still improving"
STUCK = "stuck: keypoints on the background/centre"


@dataclass
class ConvergenceReport:
    """One check of the convergence signals.

    Attributes
    ----------
    step : int
        Training step of the check.
    spread_px : float
        Median heatmap spread (square root of the mean variance), input pixels.
    movement_px : float or None
        Median displacement of preview keypoints since the last check, input pixels.
    on_animal : float or None
        Fraction of keypoints on foreground pixels; None when no foreground was found.
    per_keypoint_on_animal : list of float or None
        The same fraction for each keypoint.
    verdict : str
        ``"converged"``, ``"still improving"`` or ``"stuck: ..."``.
    hint : str
        What to do about the verdict (empty when nothing is needed).
    """

    step: int
    spread_px: float
    movement_px: float | None
    on_animal: float | None
    per_keypoint_on_animal: list[float] | None
    verdict: str
    hint: str

    def to_dict(self) -> dict:
        """Plain dict (for JSON logs and checkpoints)."""
        return asdict(self)


def foreground_masks(preview: torch.Tensor, background: torch.Tensor, dilate_px: int = 2):
    """Pixels where preview frames differ from the background.

    Parameters
    ----------
    preview : Tensor
        ``(N, 3, H, W)`` frames in [0, 1].
    background : Tensor
        ``(N, 1, H, W)`` gray background seen through the same windows, in [0, 1].
    dilate_px : int
        Dilation of the mask, pixels.

    Returns
    -------
    Tensor
        ``(N, H, W)`` bool.
    """
    diff = (to_gray(preview) - background).abs()
    mask = (diff > FOREGROUND_THRESHOLD).float()
    mask = F.max_pool2d(mask, 2 * dilate_px + 1, stride=1, padding=dilate_px)
    return mask[:, 0] > 0


class ConvergenceMonitor:
    """Keeps the history of checks and turns it into a verdict.

    Parameters
    ----------
    foreground : Tensor or None
        ``(N, H, W)`` bool foreground of the preview frames (input pixels), or None.
    input_size : tuple of int
        ``(height, width)`` of the model input, pixels.
    patience : int
        Consecutive calm checks needed to call the run converged.
    calm_px : float
        Median keypoint movement below which a check counts as calm, input pixels.
    """

    def __init__(
        self,
        foreground: torch.Tensor | None,
        input_size: tuple[int, int],
        patience: int = 3,
        calm_px: float = 0.5,
    ) -> None:
        self.foreground = foreground
        self.input_size = input_size
        self.patience = patience
        self.calm_px = calm_px
        self.previous: np.ndarray | None = None
        self.history: list[ConvergenceReport] = []

    def check(self, step: int, mean: torch.Tensor, covariance: torch.Tensor) -> ConvergenceReport:
        """Record one check.

        Parameters
        ----------
        step : int
            Current training step.
        mean : Tensor
            ``(N, K, 2)`` preview keypoints, normalised units.
        covariance : Tensor
            ``(N, K, 2, 2)`` their covariances, normalised units squared.
        """
        height, width = self.input_size
        half = np.array([width / 2.0, height / 2.0])
        points = (mean.detach().cpu().numpy() + 1.0) * half  # input pixels from the edge
        cov = covariance.detach().cpu().numpy()
        variance = (cov[..., 0, 0] * half[0] ** 2 + cov[..., 1, 1] * half[1] ** 2) / 2
        spread = float(np.median(np.sqrt(np.maximum(variance, 0))))
        movement = None
        if self.previous is not None:
            movement = float(np.median(np.linalg.norm(points - self.previous, axis=-1)))
        self.previous = points
        on_animal, per_keypoint = self._on_animal(points)
        verdict, hint = self._verdict(points, spread, movement, on_animal)
        report = ConvergenceReport(step, spread, movement, on_animal, per_keypoint, verdict, hint)
        self.history.append(report)
        return report

    def _on_animal(self, points: np.ndarray) -> tuple[float | None, list[float] | None]:
        if self.foreground is None or not bool(self.foreground.any()):
            return None, None
        mask = self.foreground.cpu().numpy()
        n, height, width = mask.shape
        cols = np.clip(points[..., 0].astype(int), 0, width - 1)
        rows = np.clip(points[..., 1].astype(int), 0, height - 1)
        hits = mask[np.arange(n)[:, None], rows, cols]  # (N, K)
        per_keypoint = hits.mean(0)
        return float(per_keypoint.mean()), [float(x) for x in per_keypoint]

    def _verdict(self, points, spread, movement, on_animal) -> tuple[str, str]:
        height, width = self.input_size
        centre = np.array([width / 2.0, height / 2.0])
        near_centre = np.linalg.norm(points - centre, axis=-1) < 0.05 * max(height, width)
        diffuse = spread > 0.2 * max(height, width)
        if (on_animal is not None and on_animal < 0.3) or near_centre.mean() > 0.5 or diffuse:
            return STUCK, (
                "Most keypoints are off the animal or their heatmaps are diffuse. Train longer; "
                "if it persists, check the frame gap (the animal must move between the two "
                "frames), crop to the arena, or lower the learning rate."
            )
        calm = [r.movement_px for r in self.history[-(self.patience - 1) :]] + [movement]
        if len(calm) >= self.patience and all(m is not None and m < self.calm_px for m in calm):
            return CONVERGED, ""
        return IMPROVING, ""
