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
from bkind_model.multiview.synthetic import load_ground_truth_3d


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
        """Plain dict for JSON."""
        return {
            "mpjpe": self.keypoints,
            "centroid_mpjpe": self.centroid,
            "mean_pose_mpjpe": self.mean_pose,
            "ratio_to_centroid": self.ratio_to_centroid,
            "per_joint": self.per_joint,
            "reprojection_px": self.reprojection_px,
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


def load_truth_3d(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """3D joints ``(T, J, 3)`` and their names from a synthetic ground truth file."""
    truth = load_ground_truth_3d(path)
    return np.asarray(truth.joints3d, np.float64), list(truth.joint_names)


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
    """
    result = Result3D.load(results)
    joints, names = load_truth_3d(truth)
    if len(joints) != len(result.points):
        raise ConfigError(
            f"{truth}: {len(joints)} frames of ground truth for {len(result.points)} frames of "
            f"3D keypoints in {results}; score the results of the same session."
        )
    config = Config.from_dict(result.metadata["config"])
    sources = [open_video(v) for v in result.metadata["videos"]]
    letterboxes = [Letterbox.from_dict(lb) for lb in result.metadata["letterboxes"]]
    offsets = tuple(int(o) for o in result.metadata["offsets"])
    views = prepare_views(
        sources, letterboxes, offsets, len(result.points), config, cache_dir=cache_dir
    )
    centroid = centroid_track(views, CameraRig(result.cameras))
    return score_3d(result, joints, centroid, names)
