"""How good are 3D keypoints? Ridge regression to 3D joints, MPJPE in world units.

Discovered 3D keypoints have no names; a linear map from a frame's keypoints to its
labelled 3D joints, fitted on one half of the frames and tested on the other (and the
reverse), gives the mean per-joint position error (MPJPE). The baselines go through the
same code: the *mean pose*, and the *centroid*: the animal's foreground centre in every
view, triangulated (what any multi-camera tracker gets for free).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.evaluate.regression import make_folds, regression_score
from bkind_model.frames.letterbox import Letterbox
from bkind_model.io.video import open_video
from bkind_model.multiview.cameras import CameraRig
from bkind_model.multiview.data import centroid_track, prepare_views
from bkind_model.multiview.results import Result3D
from bkind_model.multiview.synthetic import GroundTruth3D, GroundTruthError, load_ground_truth_3d

#: Median distance, px, between the truth's 2D joints and its 3D joints projected by the
#: results' cameras above which the truth belongs to other cameras.
TRUTH_CAMERA_TOLERANCE_PX = 1.0


@dataclass
class Score3D:
    """MPJPE of the keypoints and the baselines, world units.

    Attributes
    ----------
    keypoints, centroid, mean_pose : float
        Mean per-joint position error after regression.
    per_joint : dict of str to float
        The keypoints' error per joint.
    reprojection_px : dict of str to float
        Median reprojection error of each view, px.
    n_frames : int
        Frames scored.
    """

    keypoints: float
    centroid: float
    mean_pose: float
    per_joint: dict[str, float]
    reprojection_px: dict[str, float]
    n_frames: int

    @property
    def ratio_to_centroid(self) -> float:
        """Keypoints' MPJPE over the centroid's (the goal is <= 0.5)."""
        return self.keypoints / self.centroid

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for strict JSON (a value that could not be measured is None)."""

        def number(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        return {
            "mpjpe": number(self.keypoints),
            "centroid_mpjpe": number(self.centroid),
            "mean_pose_mpjpe": number(self.mean_pose),
            "ratio_to_centroid": number(self.ratio_to_centroid),
            "per_joint": {k: number(v) for k, v in self.per_joint.items()},
            "reprojection_px": {k: number(v) for k, v in self.reprojection_px.items()},
            "n_frames": self.n_frames,
        }


def score_3d(
    result: Result3D,
    joints: np.ndarray,
    centroid: np.ndarray,
    joint_names: list[str],
    frames: np.ndarray | None = None,
) -> Score3D:
    """Regress 3D joints from keypoints and the baselines, halves and reverse.

    Parameters
    ----------
    result : Result3D
        3D keypoints of every synchronised frame.
    joints : ndarray
        ``(N, J, 3)`` labelled joints of the scored frames, world units (NaN: missing).
    centroid : ndarray
        ``(T, 3)`` the centroid baseline of every frame (:func:`centroid_track`).
    joint_names : list of str
        J names.
    frames : ndarray, optional
        ``(N,)`` synchronised frames the joints belong to (all T when None).
    """
    frames = np.arange(len(result.points)) if frames is None else np.asarray(frames)
    if len(frames) != len(joints):
        raise ConfigError(f"{len(joints)} labelled frames for {len(frames)} frame numbers.")
    folds = make_folds(len(frames), 2)
    ok = np.isfinite(centroid[frames]).all(1)
    centroid_features = np.where(ok[:, None], centroid[frames], np.nanmean(centroid, 0))
    keypoints = regression_score(result.points[frames].reshape(len(frames), -1), joints, folds)
    blob = regression_score(centroid_features, joints, folds)
    mean = regression_score(np.zeros((len(frames), 0)), joints, folds)
    return Score3D(
        keypoints.error_px,
        blob.error_px,
        mean.error_px,
        {n: float(e) for n, e in zip(joint_names, keypoints.per_joint_px, strict=True)},
        result.per_view_error(),
        len(frames),
    )


def check_truth(truth: GroundTruth3D, result: Result3D, path: str | Path) -> None:
    """Refuse a ground truth that cannot score these results.

    The truth needs one frame per synchronised frame, at least one labelled (finite)
    joint, and the results' cameras: the same names, and its 2D joints where the results'
    cameras project its 3D joints (within :data:`TRUTH_CAMERA_TOLERANCE_PX`, median), else
    it is the truth of another rig or another calibration of the world.

    Raises
    ------
    GroundTruthError
        Naming the file and what does not fit.
    """
    fix = "Score the results against the ground truth of the same session and cameras."
    frames = len(result.points)
    if len(truth.joints3d) != frames:
        raise GroundTruthError(
            path, f"{len(truth.joints3d)} frames of ground truth for {frames} frames of 3D "
            "keypoints.", fix,
        )  # fmt: skip
    labelled = np.isfinite(truth.joints3d).all(-1)
    if not labelled.any():
        raise GroundTruthError(path, "has no labelled joint: every 3D joint is NaN.", fix)
    if list(truth.camera_names) != result.camera_names:
        raise GroundTruthError(
            path, f"is the truth of cameras {list(truth.camera_names)}, the results' are "
            f"{result.camera_names}.", fix,
        )  # fmt: skip
    projected = CameraRig(result.cameras).project_numpy(truth.joints3d)  # (T, J, V, 2)
    gap = np.linalg.norm(projected.transpose(0, 2, 1, 3) - truth.joints2d, axis=-1)
    median = float(np.nanmedian(gap)) if np.isfinite(gap).any() else np.inf
    if not median <= TRUTH_CAMERA_TOLERANCE_PX:
        raise GroundTruthError(
            path, f"its 2D joints lie {median:.3g} px (median) from its 3D joints as the "
            "results' cameras see them: it is the truth of other cameras (another rig or "
            "calibration).", fix,
        )  # fmt: skip


def evaluate_3d(
    results: str | Path, truth: str | Path, cache_dir: str | Path | None = None
) -> Score3D:
    """Score a ``keypoints3d.h5`` against 3D ground truth, with the centroid baseline.

    Parameters
    ----------
    results : str or Path
        From :func:`~bkind_model.multiview.extraction.extract_3d`.
    truth : str or Path
        ``ground_truth_3d.h5`` of a synthetic session (the synchronised frames of the
        results, in order).
    cache_dir : str or Path, optional
        Where the frame caches are (the baseline finds the animal in every view).

    Raises
    ------
    GroundTruthError
        A truth that cannot be read or does not fit the results (:func:`check_truth`).
    """
    result = Result3D.load(results)
    ground = load_ground_truth_3d(truth)
    check_truth(ground, result, truth)
    config = Config.from_dict(result.metadata["config"])
    sources = [open_video(v) for v in result.metadata["videos"]]
    letterboxes = [Letterbox.from_dict(lb) for lb in result.metadata["letterboxes"]]
    offsets = tuple(int(o) for o in result.metadata["offsets"])
    views = prepare_views(
        sources, letterboxes, offsets, len(result.points), config, cache_dir=cache_dir
    )
    centroid = centroid_track(views, CameraRig(result.cameras))
    return score_3d(result, ground.joints3d, centroid, list(ground.joint_names))
