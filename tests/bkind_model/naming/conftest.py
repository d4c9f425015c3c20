"""A synthetic video with discovered keypoints made from its ground truth.

The "discovered" keypoints are fixed blends of the true joints (each a point of the body,
as B-KinD's keypoints are) plus 1 px of noise, stored as a real results file of the real
synthetic video, so maps are fitted and scored against the true joints.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bkind_model.io.labels import Labels, image_path, labels_from_joints
from bkind_model.io.results import KeypointResult, video_fingerprint
from bkind_model.io.video import open_video
from bkind_model.synthetic import load_ground_truth

N_DISCOVERED = 8


@dataclass
class Sample:
    video: Path
    results: Path
    joints: np.ndarray  # (T, J, 2) px
    names: list[str]

    def labels(self, frames) -> Labels:
        """Ground-truth labels of ``frames``, rows named as DeepLabCut names them."""
        frames = np.asarray(frames)
        rows = [image_path(self.video, int(f), len(self.joints)) for f in frames]
        return labels_from_joints(self.joints[frames], self.names, rows)


def discovered(joints: np.ndarray, seed: int = 0, n: int = N_DISCOVERED) -> np.ndarray:
    """``(T, n, 2)`` blends of the ``(T, J, 2)`` joints with 1 px noise."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(joints.shape[1], 0.3), size=n)
    return np.einsum("kj,tjd->tkd", mix, joints) + rng.normal(0, 1.0, (len(joints), n, 2))


@pytest.fixture(scope="session")
def sample(tiny_video, tmp_path_factory) -> Sample:
    truth = load_ground_truth(tiny_video)
    joints = truth.joints[:, 0].astype(np.float64)
    keypoints = discovered(joints)
    t, k = keypoints.shape[:2]
    result = KeypointResult(
        keypoints.astype(np.float32),
        np.full((t, k), 5.0, np.float32),
        np.tile(4.0 * np.eye(2), (t, k, 1, 1)).astype(np.float32),
        {
            "video_path": str(tiny_video),
            "fps": 30.0,
            "frame_size": [128, 128],
            "checkpoint_sha256": "0" * 64,
            "video_fingerprint": video_fingerprint(open_video(tiny_video)),
        },
    )
    path = result.save(tmp_path_factory.mktemp("named") / "tiny.bkind.h5")
    return Sample(tiny_video, path, joints, list(truth.joint_names))
