"""The loss terms of a 3D step: every view's reconstruction, consistency, separation, bones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bkind_model.frames.dissimilarity import structural_dissimilarity
from bkind_model.multiview.data import ViewInputs
from bkind_model.multiview.network import BKinD3D, ViewGeometry
from bkind_model.multiview.settings import Settings3D
from bkind_model.train.losses import reconstruction_loss, separation_loss


def pair_lengths(points: Tensor) -> Tensor:
    """``(N, K, 3)`` points -> ``(N, K * (K - 1) / 2)`` distances of every pair ``i < j``."""
    k = points.shape[1]
    i, j = torch.triu_indices(k, k, 1, device=points.device)
    return (points[:, i] - points[:, j]).norm(dim=-1)


def bone_loss(points: Tensor, weights: Tensor, scale: float) -> Tensor:
    """Bone-length constancy: weighted variance of pair distances across frames.

    Parameters
    ----------
    points : Tensor
        ``(N, K, 3)`` 3D keypoints of N frames, world units.
    weights : Tensor
        ``(K * (K - 1) / 2,)`` edge weights (:meth:`BKinD3D.edge_weights`).
    scale : float
        Length the distances are measured in, world units.

    Returns
    -------
    Tensor
        Scalar: ``sum_e w_e var_t(length_e / scale)``. (Relative to each pair's mean
        length instead, it trained worse: 0.94x the centroid against 0.70x at 400 steps,
        bench/README.md.)
    """
    lengths = pair_lengths(points) / scale
    return (weights * lengths.var(0)).sum()


def on_animal(foreground: Tensor, uv: Tensor) -> Tensor:
    """Mean foreground under the reprojected keypoints: 1 when all lie on the animal.

    Parameters
    ----------
    foreground : Tensor
        ``(B, V, 1, H, W)`` smooth animal maps (:func:`~bkind_model.multiview.data.foreground`).
    uv : Tensor
        ``(B, V, K, 2)`` keypoints in normalised window coordinates.

    Returns
    -------
    Tensor
        Scalar in [0, 1]. A 3D point whose projections lie on the animal in every view
        lies in the animal's visual hull, so this keeps the keypoints on the body rather
        than at a fixed place of the windows that follow it.
    """
    sampled = F.grid_sample(
        foreground.flatten(0, 1).float(),
        uv.flatten(0, 1).unsqueeze(2).float(),
        align_corners=False,
        padding_mode="zeros",
    )  # (B V, 1, K, 1)
    return sampled.mean()


def terms_3d(
    model: BKinD3D,
    first: ViewInputs,
    second: ViewInputs,
    geometry: ViewGeometry,
    settings: Settings3D,
    reconstruction: str,
    step: int,
) -> dict[str, Tensor]:
    """The weighted loss terms of one batch of synchronised pairs.

    Parameters
    ----------
    model : BKinD3D
        In training mode.
    first, second : ViewInputs
        Frames ``t`` and ``t + gap`` of every view, each pair through one window.
    geometry : ViewGeometry
        Cameras and letterboxes.
    settings : Settings3D
        Weights of the terms.
    reconstruction : str
        Reconstruction loss kind (:func:`~bkind_model.train.losses.reconstruction_loss`).
    step : int
        Steps done before this one (the bone curriculum).

    Returns
    -------
    dict of str to Tensor
        ``reconstruction`` always; ``consistency`` (algebraic design), ``hull``,
        ``separation`` and ``bones`` when on.
    """
    out = model(first, second, geometry)
    assert out.reconstruction is not None
    target = structural_dissimilarity(first.images.flatten(0, 1), second.images.flatten(0, 1))
    terms = {
        "reconstruction": reconstruction_loss(reconstruction, out.reconstruction.float(), target)
    }
    if settings.consistency_weight > 0 and model.volume is None:
        gaps = [
            (w * ((d - r) ** 2).sum(-1)).sum(1).mean()
            for d, r, w in (
                (out.detected_a, out.reprojected_a, out.weights_a),
                (out.detected_b, out.reprojected_b, out.weights_b),
            )
        ]
        terms["consistency"] = settings.consistency_weight * 0.5 * (gaps[0] + gaps[1])
    if settings.hull_weight > 0 and first.foreground is not None and second.foreground is not None:
        on_a = on_animal(first.foreground, out.reprojected_a)
        on_b = on_animal(second.foreground, out.reprojected_b)
        terms["hull"] = settings.hull_weight * (1 - 0.5 * (on_a + on_b))
    points = torch.cat([out.points_a, out.points_b]) / geometry.scene_scale
    if settings.separation_weight > 0:
        terms["separation"] = settings.separation_weight * separation_loss(
            points, settings.separation_scale
        )
    if settings.bone_weight > 0 and step >= settings.bone_start:
        terms["bones"] = settings.bone_weight * bone_loss(points, model.edge_weights(), 1.0)
    return terms
