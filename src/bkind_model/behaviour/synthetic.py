"""The synthetic animal's ground truth for behaviour: its states as labels, its joints as keypoints.

A synthetic sample (:func:`bkind_model.synthetic.write_sample`) knows each frame's
behaviour state (walk, turn, rear, groom, rest) and every joint; these are the labels the
benchmark and the tests train on, and the named keypoints of an upper reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bkind_model.behaviour.labels import BehaviourLabels, labels_from_codes
from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import load_ground_truth


def ground_truth_labels(video: str | Path, animal: int = 0) -> BehaviourLabels:
    """Every frame of a synthetic sample labelled with the generator's behaviour state.

    Parameters
    ----------
    video : str or Path
        The sample video (its ``.groundtruth.npz`` is read).
    animal : int
        Which animal's states.
    """
    truth = load_ground_truth(video)
    codes = truth.behaviour[:, animal].astype(np.int16)
    return labels_from_codes(list(truth.behaviour_names), {Path(video).name: codes})


def ground_truth_result(video: str | Path, animal: int = 0) -> KeypointResult:
    """The true joints of a synthetic sample as named keypoints ``(T, J, 2)``, px."""
    truth = load_ground_truth(video)
    joints = truth.joints[:, animal].astype(np.float32)
    n_frames, n_joints = joints.shape[:2]
    metadata = {
        "video_path": str(Path(video).resolve()),
        "fps": truth.fps,
        "frame_size": [truth.config.height, truth.config.width],
        "keypoint_names": list(truth.joint_names),
        "kind": "named",
    }
    return KeypointResult(
        keypoints=joints,
        confidence=np.ones((n_frames, n_joints), np.float32),
        covariance=np.zeros((n_frames, n_joints, 2, 2), np.float32),
        metadata=metadata,
    )
