"""How good are discovered keypoints? Regress labelled joints from them.

Discovered keypoints have no names. A linear (ridge) map from the discovered keypoints of a
frame to its labelled joints, fitted on some labelled frames and tested on others, tells
how much of the pose they capture. Two baselines go through the same code: the *mean
pose* (always predict the average training pose) and the *blob* (position, orientation,
length and width of the background-subtracted foreground), which any tracker gets for free.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bkind_model.errors import ConfigError
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
    mean, std = features.mean(0), features.std(0)
    # A feature (nearly) constant on the training frames carries nothing; scaled to unit
    # variance its noise would get a weight, and one test frame where it moves would be
    # thrown thousands of pixels away. Scales below 1% of the typical one are raised.
    spread = std[std > 0]
    std = np.maximum(std, STD_FLOOR * float(np.median(spread)) if len(spread) else 1.0)
    x = np.column_stack([(features - mean) / std, np.ones(len(features))])
    penalty = alpha * len(features) * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(x.T @ x + penalty, x.T @ targets)
    return np.vstack([weights[:-1] / std[:, None], weights[-1] - (mean / std) @ weights[:-1]])


#: Smallest feature scale, relative to the median scale (see :func:`ridge_fit`).
STD_FLOOR = 0.01
#: Ridge penalties tried by :func:`choose_alpha` (standardised units, per sample).
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Contiguous folds of the training frames that choose the penalty.
INNER_FOLDS = 5


def choose_alpha(features: np.ndarray, targets: np.ndarray, dims: int = 2) -> float:
    """The ridge penalty of :data:`ALPHAS` that predicts best across the training frames.

    Cross-validation inside the training frames only (:data:`INNER_FOLDS` contiguous
    folds, mean Euclidean error of the joints), so the test frames stay unseen.
    With few frames and keypoints that move together, a fixed small penalty can give
    huge weights that throw one odd test frame thousands of pixels away; the chosen one
    does not, and it is chosen the same way for the keypoints and for the baselines.

    Parameters
    ----------
    features : ndarray
        ``(N, F)``.
    targets : ndarray
        ``(N, dims * J)`` coordinates of J joints.
    dims : int
        Coordinates per joint: 2 (x, y) or 3 (x, y, z).

    Returns
    -------
    float
        The penalty (the smallest of :data:`ALPHAS` when there are too few frames).
    """
    if features.shape[1] == 0 or len(features) < 2 * INNER_FOLDS:
        return ALPHAS[0]
    errors = []
    for alpha in ALPHAS:
        total = 0.0
        for train, test in k_folds(len(features), INNER_FOLDS):
            weights = ridge_fit(features[train], targets[train], alpha)
            residual = ridge_predict(weights, features[test]) - targets[test]
            total += float(np.linalg.norm(residual.reshape(len(test), -1, dims), axis=-1).sum())
        errors.append(total)
    return ALPHAS[int(np.argmin(errors))]


def ridge_predict(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``(N, F)`` features -> ``(N, D)`` predictions with weights from :func:`ridge_fit`."""
    return features @ weights[:-1] + weights[-1]


@dataclass
class RegressionScore:
    """Error of joints predicted from features on held-out frames.

    Only labelled cells count: a (frame, joint) whose label is missing is neither fitted
    nor scored, and is counted in ``skipped_per_joint``.

    Attributes
    ----------
    error_px : float
        Mean Euclidean error over the scored (test frame, joint) cells, px; NaN when no
        cell was scored.
    per_joint_px : ndarray
        ``(J,)`` mean error of each joint over its scored test frames, px; NaN for a joint
        without any scored frame.
    normalised : float or None
        ``error_px`` divided by the body length, when one was given.
    skipped_per_joint : ndarray
        ``(J,)`` int: test cells of each joint that were not scored (label missing, or
        no labelled training frame for the joint in that fold).
    n_scored : int
        Number of scored (test frame, joint) cells.
    """

    error_px: float
    per_joint_px: np.ndarray
    normalised: float | None
    skipped_per_joint: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_scored: int = 0

    @property
    def skipped_total(self) -> int:
        """Test cells not scored, over all joints."""
        return int(np.sum(self.skipped_per_joint))

    def to_dict(self) -> dict:
        """JSON-valid dict; NaN becomes None.

        Keys ``error_px``, ``per_joint_px``, ``normalised``, ``skipped_per_joint``,
        ``skipped_total`` and ``n_scored``.
        """
        return {
            "error_px": _finite_or_none(self.error_px),
            "per_joint_px": [_finite_or_none(x) for x in self.per_joint_px],
            "normalised": _finite_or_none(self.normalised),
            "skipped_per_joint": [int(x) for x in self.skipped_per_joint],
            "skipped_total": self.skipped_total,
            "n_scored": int(self.n_scored),
        }


def _finite_or_none(value: Any) -> float | None:
    """``float(value)``, or None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """``value`` with numpy scalars made Python and every NaN/inf float made None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(value)
    return value


def _frame_list(index: np.ndarray, names: Sequence[str] | None = None, limit: int = 8) -> str:
    """``3, 7, 9 ... (+N more)`` for frame indices (or their names)."""
    shown = [str(names[i]) if names is not None else str(i) for i in index[:limit]]
    more = f" (+{len(index) - limit} more)" if len(index) > limit else ""
    return ", ".join(shown) + more


def regression_score(
    features: np.ndarray,
    joints: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    body_length: float | None = None,
    alpha: float | None = None,
) -> RegressionScore:
    """Fit on each fold's training frames, test on its test frames, pool the errors.

    Missing labels are skipped joint by joint: each joint's map is fitted on the training
    frames where that joint is labelled and scored on the test frames where it is
    labelled (a joint is missing when its x or y is NaN).

    Parameters
    ----------
    features : ndarray
        ``(N, F)`` per-frame features, finite (a mean-pose baseline passes ``(N, 0)``).
    joints : ndarray
        ``(N, J, 2)`` labelled joints, px (or ``(N, J, 3)`` world units, for 3D); NaN
        where not labelled.
    folds : sequence of (train_index, test_index)
        Frame indices; see :func:`make_folds`, :func:`split_halves` and :func:`k_folds`.
    body_length : float, optional
        Length used to normalise the error (e.g. median snout-tailbase distance), px.
    alpha : float, optional
        Ridge penalty; None chooses it for each fit by cross-validation within the
        fit's training frames (:func:`choose_alpha`).

    Returns
    -------
    RegressionScore
        Errors in px over the scored cells, and the skipped cells of each joint.

    Raises
    ------
    ConfigError
        If the shapes disagree, a fold indexes outside the frames, or ``features`` hold
        NaN/inf (the message lists the frames).
    """
    features = np.asarray(features, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] not in (2, 3):
        raise ConfigError(
            f"joints of shape {joints.shape}; expected (frames, joints, 2) or (frames, joints, 3)."
        )
    n, n_joints, dims = joints.shape
    if features.ndim != 2 or len(features) != n:
        raise ConfigError(f"features of shape {features.shape} for {n} frames of joints.")
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if len(bad):
        raise ConfigError(
            f"features are NaN or infinite in {len(bad)} of {n} frames ({_frame_list(bad)}); "
            "extract the keypoints of these frames again or leave them out."
        )
    if len(folds) == 0:
        raise ConfigError("no folds; use make_folds(n_frames, folds) with folds >= 2.")
    labelled = np.asarray(np.isfinite(joints).all(axis=-1), dtype=bool)  # (N, J)
    sums = np.zeros(n_joints)
    scored = np.zeros(n_joints, np.int64)
    skipped = np.zeros(n_joints, np.int64)
    for fold, (train, test) in enumerate(folds):
        train, test = np.asarray(train, np.intp), np.asarray(test, np.intp)
        for part in (train, test):
            if part.ndim != 1 or (len(part) and (part.min() < -n or part.max() >= n)):
                raise ConfigError(f"fold {fold} indexes outside the {n} frames.")
        # Joints labelled on the same training frames share one fit (all of them, when
        # nothing is missing).
        groups: dict[bytes, list[int]] = {}
        for j in range(n_joints):
            groups.setdefault(np.packbits(labelled[train, j]).tobytes(), []).append(j)
        for group in groups.values():
            members = np.asarray(group, np.intp)
            rows = train[labelled[train, members[0]]]
            usable = labelled[np.ix_(test, members)]  # (len(test), len(members))
            if len(rows) == 0:
                skipped[members] += len(test)
                continue
            targets = joints[np.ix_(rows, members)].reshape(len(rows), -1)
            penalty = choose_alpha(features[rows], targets, dims) if alpha is None else alpha
            weights = ridge_fit(features[rows], targets, penalty)
            predicted = ridge_predict(weights, features[test]).reshape(len(test), -1, dims)
            errors = np.linalg.norm(predicted - joints[np.ix_(test, members)], axis=-1)
            sums[members] += np.where(usable, errors, 0.0).sum(axis=0)
            scored[members] += usable.sum(axis=0)
            skipped[members] += (~usable).sum(axis=0)
    per_joint = np.full(n_joints, np.nan)
    np.divide(sums, scored, out=per_joint, where=scored > 0)
    total = int(scored.sum())
    mean = float(sums.sum() / total) if total else float("nan")
    normalised = None
    if body_length is not None and total and np.isfinite(body_length) and body_length > 0:
        normalised = mean / float(body_length)
    return RegressionScore(mean, per_joint, normalised, skipped, total)


def make_folds(n_frames: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validated folds over ``n_frames`` frames.

    Parameters
    ----------
    n_frames : int
        Number of (labelled) frames.
    folds : int
        2: fit on the first half, test on the second, and the reverse; k > 2: k
        contiguous folds. From 2 to ``n_frames``.

    Raises
    ------
    ConfigError
        If ``folds`` is not an integer from 2 to ``n_frames``.
    """
    if n_frames < 2:
        raise ConfigError(
            f"{n_frames} labelled frame(s); evaluation needs at least 2 (one to fit, one to test)."
        )
    if isinstance(folds, (bool, np.bool_)) or not isinstance(folds, (int, np.integer)):
        raise ConfigError(f"folds={folds!r}: use an integer from 2 to {n_frames}.")
    if not 2 <= folds <= n_frames:
        raise ConfigError(
            f"folds={folds}: use 2 to {n_frames} (the number of labelled frames); 2 fits on "
            "one half and tests on the other, k > 2 makes k contiguous folds."
        )
    return split_halves(n_frames) if folds == 2 else k_folds(n_frames, int(folds))


def split_halves(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fit on the first half and test on the second, and the reverse (``n >= 2``)."""
    if n < 2:
        raise ConfigError(f"{n} frame(s) cannot be split in halves; at least 2 are needed.")
    index = np.arange(n)
    first, second = index[: n // 2], index[n // 2 :]
    return [(first, second), (second, first)]


def k_folds(n: int, k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` contiguous folds (contiguous, so neighbouring frames do not leak); 2 <= k <= n."""
    if not 2 <= k <= n:
        raise ConfigError(f"{k} folds of {n} frames; use 2 to {n} folds.")
    index = np.arange(n)
    return [(np.setdiff1d(index, part), part) for part in np.array_split(index, k)]


def load_truth(path: str | Path) -> Labels:
    """Labelled joints from a DeepLabCut labels file or a synthetic ground-truth ``.npz``.

    Parameters
    ----------
    path : str or Path
        A DeepLabCut ``CollectedData_*.h5`` / ``.csv``, or the ``.npz`` written beside a
        synthetic sample (animal 0 is used).

    Raises
    ------
    LabelsError
        If the file is missing or cannot be read (one line naming the file).
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        return load_labels(path)
    if not path.is_file():
        raise LabelsError(f"{path}: labels file not found; check the path.")
    try:
        truth = load_ground_truth(path)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise LabelsError(
            f"{path}: not a readable synthetic ground truth ({exc}); write the sample again."
        ) from exc
    joints = truth.joints[:, 0].astype(np.float64)
    return labels_from_joints(
        joints, list(truth.joint_names), [str(i) for i in range(len(joints))], source=path
    )


def _check_finite(
    features: np.ndarray, used: np.ndarray, frames: Sequence[str], what: str
) -> None:
    """Raise :class:`LabelsError` naming the ``used`` frames whose features are NaN/inf."""
    bad = used[~np.isfinite(features[used]).all(axis=1)]
    if len(bad):
        raise LabelsError(
            f"{what} are NaN or infinite in {len(bad)} of {len(used)} labelled frames "
            f"({_frame_list(bad, frames)}); extract those frames again or remove their labels."
        )


#: Share of labelled points that may lie outside the frame (clicks just past an edge).
OUTSIDE_TOLERANCE = 0.05


def _check_labels_fit(
    joints: np.ndarray, frames: Sequence[str], result: KeypointResult, labels_name: object
) -> None:
    """Refuse labels made on other images: outside the frame, or naming other files.

    Parameters
    ----------
    joints : ndarray
        ``(N, J, 2)`` labelled points, px (NaN where missing).
    frames : sequence of str
        The labelled images' names as the labels file gives them.
    result : KeypointResult
        The keypoints of the frames these labels should belong to.

    Raises
    ------
    LabelsError
        If more than :data:`OUTSIDE_TOLERANCE` of the labelled points lie outside the
        results' frames, or when the results come from an image folder and none of its
        files has the name of a labelled image.
    """
    size = result.metadata.get("frame_size")
    points = joints[np.isfinite(joints).all(axis=-1)]
    if size is not None and len(points):
        height, width = (int(v) for v in size)
        margin = 0.02 * max(height, width)
        outside = (
            (points[:, 0] < -margin)
            | (points[:, 0] > width + margin)
            | (points[:, 1] < -margin)
            | (points[:, 1] > height + margin)
        )
        if outside.mean() > OUTSIDE_TOLERANCE:
            span = points.max(axis=0)
            raise LabelsError(
                f"{labels_name}: {int(outside.sum())} of {len(points)} labelled points lie "
                f"outside the {width}x{height} px frames of the keypoints (labels reach "
                f"x={span[0]:.0f}, y={span[1]:.0f}): they were made on images of another "
                "size or another video. Extract keypoints on the labelled images themselves "
                "(the folder beside the labels file), or rescale the labels to this size."
            )
    folder = Path(str(result.video_path or ""))
    if frames and folder.is_dir():
        files = {p.name for p in folder.iterdir()}
        names = [Path(str(f).replace("\\", "/")).name for f in frames]
        if not any(any(file.endswith(name) for file in files) for name in names):
            raise LabelsError(
                f"{labels_name}: none of its {len(names)} labelled images (e.g. {names[0]}) "
                f"is in {folder}: these labels belong to other images (another project or "
                "animal). Extract keypoints on the folder of the labelled images, or pass "
                "the labels file of this folder."
            )


def evaluate_results(
    results: str | Path | KeypointResult,
    labels: str | Path | Labels,
    *,
    folds: int = 2,
    video: str | Path | None = None,
) -> dict:
    """Score discovered keypoints against labelled joints, with both baselines.

    Missing labels are skipped per bodypart (see :func:`regression_score`); frames without
    any label are left out before the folds are made.

    Parameters
    ----------
    results : str, Path or KeypointResult
        Keypoints of the labelled frames (one result frame per labelled frame).
    labels : str, Path or Labels
        Labelled joints (see :func:`bkind_model.io.labels.load_labels`).
    folds : int
        2: fit on the first half, test on the second, and the reverse; k > 2: k contiguous
        folds. From 2 to the number of labelled frames.
    video : str or Path, optional
        The frames for the blob baseline; by default the video recorded in the results.

    Returns
    -------
    dict
        JSON-valid (no NaN or infinity: missing values are None). ``keypoints``,
        ``keypoints_uncertainty``, ``blob`` and ``mean_pose`` scores (see
        :meth:`RegressionScore.to_dict`), ``ratio_to_blob``, ``body_length_px``,
        ``n_frames``, ``joint_names``, ``skipped_labels`` (bodypart -> number of frames
        whose label was not scored), ``skipped_total`` and ``unlabelled_bodyparts``.

    Raises
    ------
    LabelsError
        If the labels cannot be read, do not match the keypoints frame for frame, or the
        keypoints/blob features are NaN in labelled frames (the frames are named).
    ConfigError
        If ``folds`` is outside 2 .. number of labelled frames, or no video is known.
    """
    result = results if isinstance(results, KeypointResult) else KeypointResult.load(results)
    source_name = results if not isinstance(results, KeypointResult) else "results"
    truth = labels if isinstance(labels, Labels) else load_truth(labels)
    joints = np.asarray(truth.joints, dtype=np.float64)
    n = len(joints)
    if result.n_frames != n:
        raise LabelsError(
            f"{result.metadata.get('video_path')}: {result.n_frames} frames of keypoints but "
            f"{n} labelled frames; extract keypoints on exactly the labelled frames."
        )
    labels_name = labels if not isinstance(labels, Labels) else "the labels"
    _check_labels_fit(joints, truth.frames, result, labels_name)
    video_path = video or result.video_path
    if not video_path:
        raise ConfigError(
            f"{source_name}: no video recorded in the results; pass the video (--video) for "
            "the blob baseline."
        )
    labelled = np.asarray(np.isfinite(joints).all(axis=-1), dtype=bool)  # (N, J)
    used = np.flatnonzero(labelled.any(axis=1))
    split = make_folds(len(used), folds)
    candidates = {
        "keypoints": keypoint_features(result.keypoints),
        "keypoints_uncertainty": keypoint_features(
            result.keypoints, result.confidence, result.covariance
        ),
    }
    for name, x in candidates.items():
        _check_finite(x, used, truth.frames, f"{source_name}: {name} features")
    blob = blob_features_of_video(open_video(video_path))
    if len(blob) != n:
        raise LabelsError(
            f"{video_path}: {len(blob)} video frames but {n} labelled frames; pass the video "
            "of exactly the labelled frames."
        )
    _check_finite(blob, used, truth.frames, f"{video_path}: blob features")
    candidates |= {"blob": blob, "mean_pose": np.zeros((n, 0))}
    scores = {
        name: regression_score(x[used], joints[used], split, truth.body_length)
        for name, x in candidates.items()
    }
    # Every cell of a frame without any label is skipped too.
    skipped = scores["keypoints"].skipped_per_joint + (n - len(used))
    summary: dict[str, Any] = {name: score.to_dict() for name, score in scores.items()}
    keypoint_error, blob_error = scores["keypoints"].error_px, scores["blob"].error_px
    summary["ratio_to_blob"] = keypoint_error / blob_error if blob_error > 0 else None
    summary["body_length_px"] = truth.body_length
    summary["n_frames"] = n
    summary["joint_names"] = list(truth.names)
    summary["skipped_labels"] = {
        name: int(c) for name, c in zip(truth.names, skipped, strict=True)
    }
    summary["skipped_total"] = int(skipped.sum())
    summary["unlabelled_bodyparts"] = [
        truth.names[j] for j in np.flatnonzero(~labelled.any(axis=0))
    ]
    return _json_safe(summary)
