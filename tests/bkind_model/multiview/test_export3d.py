"""anipose's pose-3d CSV from a 3D results file, read back by movement (anipose's reader)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bkind_model.multiview.export import export_3d
from bkind_model.multiview.results import Result3D


def _result(rng: np.random.Generator) -> Result3D:
    t, v, k = 7, 3, 2
    detected = rng.uniform(0, 90, (t, v, k, 2)).astype(np.float32)
    reprojected = detected + rng.normal(0, 2, detected.shape).astype(np.float32)
    weights = np.full((t, v, k), 1 / 3, np.float32)
    weights[0, 1:, 0] = 0  # keypoint 0 of frame 0: one view only, as anipose leaves out
    return Result3D(
        points=rng.normal(0, 50, (t, k, 3)).astype(np.float32),
        detected=detected,
        reprojected=reprojected,
        weights=weights,
        edges=np.array([[0, 1]]),
        edge_weights=np.array([1.0]),
        metadata={"camera_names": ["a", "b", "c"], "keypoint_names": ["nose", "tail"]},
        scores=rng.uniform(0, 1, (t, v, k)).astype(np.float32),
    )


def test_anipose_csv_is_read_back_by_movement(tmp_path):
    load_poses = pytest.importorskip("movement.io.load_poses")
    result = _result(np.random.default_rng(0))
    path = result.save(tmp_path / "keypoints3d.h5")
    csv = export_3d(path, to="csv", out=tmp_path / "pose3d.csv")
    table = pd.read_csv(csv)
    assert list(table.columns[-13:]) == [
        *(f"M_{i}{j}" for i in range(3) for j in range(3)),
        "center_0", "center_1", "center_2", "fnum",
    ]  # fmt: skip
    assert np.array_equal(table[[f"M_{i}{j}" for i in range(3) for j in range(3)]].to_numpy(),
                          np.tile(np.eye(3).ravel(), (7, 1)))  # fmt: skip
    # _error: mean over the views of |own estimate - reprojection| px; _score: min 2D score.
    error = np.linalg.norm(result.detected - result.reprojected, axis=-1)  # (T, V, K)
    assert np.allclose(table["tail_error"], error[:, :, 1].mean(1), atol=1e-4)
    assert np.allclose(table["tail_score"], result.scores[:, :, 1].min(1), atol=1e-6)
    assert table["tail_ncams"].tolist() == [3.0] * 7
    assert np.isnan(table.loc[0, ["nose_error", "nose_score", "nose_ncams"]].astype(float)).all()

    ds = load_poses.from_anipose_file(csv, fps=30)
    names = list(ds.coords["keypoints"].values)
    for k, name in enumerate(["nose", "tail"]):
        i = names.index(name)
        # The results hold float32; the CSV writes each number's shortest float32 text.
        assert np.array_equal(
            ds.position.values[:, :, i, 0].astype(np.float32), result.points[:, k]
        )
        assert np.array_equal(
            ds.confidence.values[:, i, 0], table[f"{name}_score"].to_numpy(), equal_nan=True
        )
