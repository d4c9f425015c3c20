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
from pathlib import Path
from typing import Any

import numpy as np

from bkind_model.evaluate.baselines import blob_features_of_video
from bkind_model.io.labels import Labels, LabelsError, labels_from_joints, load_labels
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from bkind_model.synthetic import load_ground_truth


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
    per_fold = []
    for train, test in folds:
        weights = ridge_fit(features[train], targets[train], alpha)
        predicted = ridge_predict(weights, features[test]).reshape(-1, n_joints, 2)
        per_fold.append(np.linalg.norm(predicted - joints[test], axis=-1))
    errors = np.concatenate(per_fold)
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


def load_truth(path: str | Path) -> Labels:
    """Labelled joints from a DeepLabCut labels file or a synthetic ground-truth ``.npz``.

    Parameters
    ----------
    path : str or Path
        A DeepLabCut ``CollectedData_*.h5`` / ``.csv``, or the ``.npz`` written beside a
        synthetic sample (animal 0 is used).
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        return load_labels(path)
    if not path.is_file():
        raise LabelsError(f"{path}: labels file not found.")
    truth = load_ground_truth(path)
    joints = truth.joints[:, 0].astype(np.float64)
    return labels_from_joints(
        joints, list(truth.joint_names), [str(i) for i in range(len(joints))]
    )


def evaluate_results(
    results: str | Path | KeypointResult,
    labels: str | Path | Labels,
    *,
    folds: int = 2,
    video: str | Path | None = None,
) -> dict:
    """Score discovered keypoints against labelled joints, with both baselines.

    Parameters
    ----------
    results : str, Path or KeypointResult
        Keypoints of the labelled frames (one result frame per labelled frame).
    labels : str, Path or Labels
        Labelled joints (see :func:`bkind_model.io.labels.load_labels`).
    folds : int
        2: fit on the first half, test on the second, and the reverse; k > 2: k contiguous
        folds.
    video : str or Path, optional
        The frames for the blob baseline; by default the video recorded in the results.

    Returns
    -------
    dict
        ``keypoints``, ``keypoints_uncertainty``, ``blob`` and ``mean_pose`` scores (see
        :class:`RegressionScore`), ``ratio_to_blob``, ``body_length_px``, ``n_frames``.
    """
    result = results if isinstance(results, KeypointResult) else KeypointResult.load(results)
    truth = labels if isinstance(labels, Labels) else load_truth(labels)
    n = len(truth.joints)
    if result.n_frames != n:
        raise LabelsError(
            f"{result.metadata.get('video_path')}: {result.n_frames} frames of keypoints but "
            f"{n} labelled frames; extract keypoints on exactly the labelled frames."
        )
    source = open_video(video or result.metadata["video_path"])
    split = split_halves(n) if folds == 2 else k_folds(n, folds)
    candidates = {
        "keypoints": keypoint_features(result.keypoints),
        "keypoints_uncertainty": keypoint_features(
            result.keypoints, result.confidence, result.covariance
        ),
        "blob": blob_features_of_video(source),
        "mean_pose": np.zeros((n, 0)),
    }
    scores = {
        name: regression_score(x, truth.joints, split, truth.body_length)
        for name, x in candidates.items()
    }
    summary: dict[str, Any] = {name: score.to_dict() for name, score in scores.items()}
    summary["ratio_to_blob"] = scores["keypoints"].error_px / scores["blob"].error_px
    summary["body_length_px"] = truth.body_length
    summary["n_frames"] = n
    summary["joint_names"] = truth.names
    return summary
