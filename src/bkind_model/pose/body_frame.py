"""The animal's own frame of reference: discovered keypoints aligned by Procrustes.

Discovered keypoints keep their identity from frame to frame (keypoint 3 is always about
the same place on the body), so the rotation that best aligns a frame's keypoints to a
reference shape is the animal's heading, without the front/back ambiguity of a blob's
axis. In that frame a pose no longer depends on where the animal is or which way it
faces: a map from discovered keypoints to named bodyparts, a behaviour classifier or a
likelihood needs far fewer examples there (naming, behaviour and likelihoods use it).

Coordinates are pixels; a body frame has its origin at the keypoints' (confidence
weighted) centre, x along the reference shape's first principal axis, y across it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BodyFrame:
    """Per-frame pose of the animal's frame of reference in the image.

    Attributes
    ----------
    centre : ndarray
        ``(T, 2)`` origin (x, y) in video pixels.
    rotation : ndarray
        ``(T, 2, 2)`` rotation taking body coordinates to image coordinates:
        ``image = centre + rotation @ body``.
    reference : ndarray
        ``(K, 2)`` the reference shape of the discovered keypoints, px, centred.
    rigidity : ndarray
        ``(K,)`` in [0, 1]: how closely each keypoint keeps its place on the body (1 for
        keypoints on the body; towards 0 for one that wanders, e.g. on the background).
        Keypoints take part in the alignment with this weight.
    """

    centre: np.ndarray
    rotation: np.ndarray
    reference: np.ndarray
    rigidity: np.ndarray

    @property
    def heading(self) -> np.ndarray:
        """``(T,)`` angle of the body's x axis in the image, radians (y down)."""
        return np.arctan2(self.rotation[:, 1, 0], self.rotation[:, 0, 0])

    def to_body(self, points: np.ndarray) -> np.ndarray:
        """Image points ``(T, N, 2)`` px -> body coordinates ``(T, N, 2)`` px."""
        shifted = points - self.centre[:, None, :]
        return np.einsum("tji,tnj->tni", self.rotation, shifted)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Body coordinates ``(T, N, 2)`` px -> image points ``(T, N, 2)`` px."""
        return np.einsum("tij,tnj->tni", self.rotation, points) + self.centre[:, None, :]


def _weights(keypoints: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    """``(T, K)`` non-negative weights: 0 for missing keypoints, else confidence or 1."""
    finite = np.isfinite(keypoints).all(axis=-1)
    if confidence is None:
        weights = np.ones(finite.shape)
    else:
        weights = np.nan_to_num(np.asarray(confidence, np.float64), nan=1.0).clip(min=0.0)
    return np.where(finite, weights, 0.0)


def _rotations(centred: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Best rotations (Kabsch, no reflection) taking ``(T, K, 2)`` reference onto each frame."""
    cross = np.einsum("tk,tki,tkj->tij", weights, centred, reference)  # (T, 2, 2)
    u, _, vt = np.linalg.svd(cross)
    det = np.sign(np.linalg.det(u @ vt))
    fix = np.ones((len(cross), 2))
    fix[:, 1] = np.where(det < 0, -1.0, 1.0)
    return (u * fix[:, None, :]) @ vt


def body_frame(
    keypoints: np.ndarray,
    confidence: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    rigidity: np.ndarray | None = None,
    iterations: int = 5,
) -> BodyFrame:
    """Align every frame's keypoints to one reference shape (generalised Procrustes).

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` discovered keypoints, px; NaN where missing (those keypoints get no
        weight).
    confidence : ndarray, optional
        ``(T, K)`` weights of the keypoints in the fit (default equal).
    reference : ndarray, optional
        ``(K, 2)`` a reference shape to align to (e.g. the one of the frames a mapping
        was fitted on, so new frames get the same body axes). Default: estimated from
        ``keypoints`` by alternating alignment and averaging.
    rigidity : ndarray, optional
        ``(K,)`` keypoint weights to use with a given ``reference`` (default all 1).
        Estimated with the reference otherwise: keypoints whose median distance from
        their place in the reference is far above the others' are down-weighted, so a
        keypoint off the animal does not turn the body's axes.
    iterations : int
        Rounds of that estimation.

    Returns
    -------
    BodyFrame
        Centres, rotations and the (centred, principal-axis aligned) reference.
    """
    keypoints = np.asarray(keypoints, np.float64)
    weights = _weights(keypoints, confidence)
    filled = np.nan_to_num(keypoints)
    if reference is not None:
        shape = np.asarray(reference, np.float64)
        rigid = np.ones(len(shape)) if rigidity is None else np.asarray(rigidity, np.float64)
        return _align(filled, weights * rigid, shape, rigid)
    rigid = np.ones(keypoints.shape[1])
    for _ in range(_ROBUST_ROUNDS):
        used = weights * rigid
        centre = _weighted_mean(filled, used)
        shape = _principal(_mean_shape(filled - centre[:, None, :], used), rigid)
        for _ in range(iterations):
            frame = _align(filled, used, shape, rigid)
            shape = _principal(_mean_shape(frame.to_body(filled), used), rigid)
        rigid = _rigidity(frame.to_body(filled), shape, weights)
    return _align(filled, weights * rigid, shape, rigid)


#: Rounds of (alignment, rigidity) estimation.
_ROBUST_ROUNDS = 3


def _rigidity(body: np.ndarray, shape: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(K,)`` Cauchy weights of each keypoint's median distance from its place, px."""
    distance = np.linalg.norm(body - shape, axis=-1)
    distance = np.where(weights > 0, distance, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN keypoints: NaN
        residual = np.nan_to_num(np.nanmedian(distance, axis=0), nan=np.inf)
    typical = np.median(residual[np.isfinite(residual)]) if np.isfinite(residual).any() else 1.0
    return 1.0 / (1.0 + (residual / (3.0 * max(float(typical), 1e-6))) ** 2)


def _weighted_mean(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(T, K, 2)`` points, ``(T, K)`` weights -> ``(T, 2)`` weighted centres."""
    total = weights.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return (weights[..., None] * points).sum(axis=1) / total


def _align(
    points: np.ndarray, weights: np.ndarray, shape: np.ndarray, rigidity: np.ndarray
) -> BodyFrame:
    """Rotation and translation of ``shape`` onto each frame's (weighted) keypoints.

    The centroids of the points and of the reference are taken over the same keypoints
    (those with weight), so a missing keypoint moves neither the centre nor the axes.
    """
    mean_points = _weighted_mean(points, weights)
    mean_shape = _weighted_mean(np.broadcast_to(shape, points.shape), weights)
    rotation = _rotations(
        points - mean_points[:, None, :], shape[None] - mean_shape[:, None, :], weights
    )
    centre = mean_points - np.einsum("tij,tj->ti", rotation, mean_shape)
    return BodyFrame(centre=centre, rotation=rotation, reference=shape, rigidity=rigidity)


def _mean_shape(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over frames of ``(T, K, 2)`` points -> ``(K, 2)``."""
    total = weights.sum(axis=0)
    total[total == 0] = 1.0
    return (weights[..., None] * points).sum(axis=0) / total[:, None]


def _principal(shape: np.ndarray, rigidity: np.ndarray) -> np.ndarray:
    """``shape`` centred and rotated so its first principal axis is x (sign fixed).

    Centre and axes are weighted by ``rigidity``; the sign of x puts the rigid keypoint
    farthest from the centre on +x.
    """
    w = rigidity / max(float(rigidity.sum()), 1e-12)
    centred = shape - (w[:, None] * shape).sum(axis=0)
    _, _, vt = np.linalg.svd(np.sqrt(w)[:, None] * centred, full_matrices=False)
    axes = vt.T
    if np.linalg.det(axes) < 0:
        axes[:, 1] *= -1
    aligned = centred @ axes
    far = np.argmax(np.linalg.norm(aligned, axis=1) * (rigidity >= 0.5 * rigidity.max()))
    if aligned[far, 0] < 0:
        aligned = -aligned  # a rotation by 180 degrees, not a reflection
    return aligned
