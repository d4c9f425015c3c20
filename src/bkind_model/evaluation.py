"""How good are discovered keypoints? Regress labelled joints from them.

Discovered keypoints have no names. A linear (ridge) map from the discovered keypoints of a
frame to its labelled joints, fitted on some labelled frames and tested on others, tells
how much of the pose they capture. Two baselines go through the same code: the *mean
pose* (always predict the average training pose) and the *blob* (position, orientation,
length and width of the background-subtracted foreground), which any tracker gets for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def keypoint_features(
    keypoints: np.ndarray,
    confidence: np.ndarray | None = None,
    covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Flatten discovered keypoints (and optionally their uncertainty) into regressors.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) px.
    confidence : ndarray, optional
        ``(T, K)``.
    covariance : ndarray, optional
        ``(T, K, 2, 2)`` px^2; its three distinct entries are used.

    Returns
    -------
    ndarray
        ``(T, F)`` features.
    """
    parts = [keypoints.reshape(len(keypoints), -1)]
    if confidence is not None:
        parts.append(confidence.reshape(len(keypoints), -1))
    if covariance is not None:
        parts.append(covariance[..., [0, 1, 1], [0, 0, 1]].reshape(len(keypoints), -1))
    return np.concatenate(parts, axis=1).astype(np.float64)


def ridge_fit(features: np.ndarray, targets: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    """Least squares with a small ridge penalty, on standardised features.

    Parameters
    ----------
    features : ndarray
        ``(N, F)``.
    targets : ndarray
        ``(N, D)``.
    alpha : float
        Ridge penalty relative to the number of samples (standardised units).

    Returns
    -------
    ndarray
        ``(F + 1, D)`` weights; the last row is the intercept. Use :func:`ridge_predict`.
    """
    mean, std = features.mean(0), features.std(0) + 1e-8
    x = np.column_stack([(features - mean) / std, np.ones(len(features))])
    penalty = alpha * len(features) * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(x.T @ x + penalty, x.T @ targets)
    return np.vstack([weights[:-1] / std[:, None], weights[-1] - (mean / std) @ weights[:-1]])


def ridge_predict(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``(N, F)`` features -> ``(N, D)`` predictions with weights from :func:`ridge_fit`."""
    return features @ weights[:-1] + weights[-1]


@dataclass
class RegressionScore:
    """Error of joints predicted from features on held-out frames.

    Attributes
    ----------
    error_px : float
        Mean Euclidean error over test frames and joints, px.
    per_joint_px : ndarray
        ``(J,)`` mean error of each joint, px.
    normalised : float or None
        ``error_px`` divided by the body length, when one was given.
    """

    error_px: float
    per_joint_px: np.ndarray
    normalised: float | None

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return {
            "error_px": self.error_px,
            "per_joint_px": [float(x) for x in self.per_joint_px],
            "normalised": self.normalised,
        }


def regression_score(
    features: np.ndarray,
    joints: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    body_length: float | None = None,
    alpha: float = 1e-3,
) -> RegressionScore:
    """Fit on each fold's training frames, test on its test frames, pool the errors.

    Parameters
    ----------
    features : ndarray
        ``(N, F)`` per-frame features (``None`` columns allowed: a mean-pose baseline
        passes ``(N, 0)``).
    joints : ndarray
        ``(N, J, 2)`` labelled joints, px.
    folds : sequence of (train_index, test_index)
        Frame indices; see :func:`split_halves` and :func:`k_folds`.
    body_length : float, optional
        Length used to normalise the error (e.g. median snout-tailbase distance), px.
    alpha : float
        Ridge penalty.
    """
    n, n_joints, _ = joints.shape
    targets = joints.reshape(n, -1)
    errors = []
    for train, test in folds:
        weights = ridge_fit(features[train], targets[train], alpha)
        predicted = ridge_predict(weights, features[test]).reshape(-1, n_joints, 2)
        errors.append(np.linalg.norm(predicted - joints[test], axis=-1))
    errors = np.concatenate(errors)
    mean = float(errors.mean())
    return RegressionScore(mean, errors.mean(0), mean / body_length if body_length else None)


def split_halves(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fit on the first half and test on the second, and the reverse."""
    index = np.arange(n)
    first, second = index[: n // 2], index[n // 2 :]
    return [(first, second), (second, first)]


def k_folds(n: int, k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` contiguous folds (contiguous, so neighbouring frames do not leak)."""
    index = np.arange(n)
    return [(np.setdiff1d(index, part), part) for part in np.array_split(index, k)]


def median_background(frames: np.ndarray) -> np.ndarray:
    """Per-pixel median of ``(N, H, W, 3)`` uint8 frames -> ``(H, W)`` float gray in [0, 1]."""
    return np.median(_gray(frames), axis=0)


def _gray(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def blob_features(
    frames: np.ndarray, background: np.ndarray, threshold: float = 0.1
) -> np.ndarray:
    """Position, orientation, length and width of the largest foreground blob per frame.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8.
    background : ndarray
        ``(H, W)`` gray background in [0, 1] (:func:`median_background`).
    threshold : float
        Absolute gray difference that counts as foreground.

    Returns
    -------
    ndarray
        ``(N, 8)``: centroid x, y (px), the major axis scaled by the length (2 values), the
        major axis scaled by the width (2), length and width (px, 2 standard deviations).
        A frame without foreground repeats the previous frame's features.
    """
    features = np.zeros((len(frames), 8))
    previous = np.zeros(8)
    for i, frame in enumerate(frames):
        mask = np.abs(_gray(frame[None])[0] - background) > threshold
        labels, count = ndimage.label(ndimage.binary_opening(mask))
        if count == 0:
            features[i] = previous
            continue
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, np.arange(1, count + 1))
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        points = np.column_stack([xs, ys]).astype(np.float64)
        centre = points.mean(0)
        values, vectors = np.linalg.eigh(np.cov((points - centre).T) + 1e-6 * np.eye(2))
        axis = vectors[:, 1] * np.sign(vectors[0, 1] or 1.0)
        length, width = 2 * np.sqrt(values[1]), 2 * np.sqrt(values[0])
        previous = features[i] = [*centre, *(axis * length), *(axis * width), length, width]
    return features
