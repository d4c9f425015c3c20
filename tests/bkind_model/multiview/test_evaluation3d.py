"""Ground-truth files that cannot score 3D results are refused in one line."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from bkind_model.cli import main
from bkind_model.multiview.calibration import read_calibration
from bkind_model.multiview.evaluation import Score3D, check_truth
from bkind_model.multiview.results import Result3D
from bkind_model.multiview.synthetic import (
    GroundTruthError,
    MultiViewConfig,
    load_ground_truth_3d,
    write_multiview_sample,
)

CONFIG = MultiViewConfig(n_frames=12, image_size=(64, 64))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_multiview_sample(tmp_path_factory.mktemp("gt"), CONFIG)


@pytest.fixture(scope="module")
def results(sample, tmp_path_factory):
    cameras = read_calibration(sample.calibration)
    t, v, k = CONFIG.n_frames, len(cameras), 2
    result = Result3D(
        np.zeros((t, k, 3), np.float32),
        np.zeros((t, v, k, 2), np.float32),
        np.zeros((t, v, k, 2), np.float32),
        np.full((t, v, k), 1 / v, np.float32),
        np.array([[0, 1]]),
        np.array([1.0]),
        {"camera_names": [c.name for c in cameras], "cameras": [c.to_dict() for c in cameras]},
    )
    return result.save(tmp_path_factory.mktemp("r") / "keypoints3d.h5")


def _crafted(sample, tmp_path, edit):
    path = tmp_path / "truth.h5"
    shutil.copy(sample.ground_truth, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _replace(f, key, data):
    del f[key]
    f.create_dataset(key, data=data)


CASES = {
    "allnan": (lambda f: _replace(f, "joints3d", np.full(f["joints3d"].shape, np.nan)),
               "every 3D joint is NaN"),
    "fps_str": (lambda f: f.attrs.__setitem__("fps", "abc"), "fps is 'abc'"),
    "jointnames_int": (lambda f: _replace(f, "joint_names", np.arange(len(f["joint_names"]))),
                       "joint_names is not a list of text names"),
    "shape2d": (lambda f: _replace(f, "joints3d", f["joints3d"][:, :, :2]),
                "joints3d has shape"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_truth_is_one_clear_error(case, sample, results, tmp_path, capsys):
    edit, message = CASES[case]
    truth = _crafted(sample, tmp_path, edit)
    assert main(["evaluate3d", str(results), str(truth)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and str(truth) in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_truth_of_other_cameras_is_refused(sample, results, tmp_path):
    result = Result3D.load(results)
    check_truth(load_ground_truth_3d(sample.ground_truth), result, sample.ground_truth)
    other = write_multiview_sample(tmp_path, MultiViewConfig(n_frames=12, image_size=(64, 64),
                                                             seed=5))  # fmt: skip
    with pytest.raises(GroundTruthError, match="truth of other cameras"):
        check_truth(load_ground_truth_3d(other.ground_truth), result, other.ground_truth)


def test_scores_are_strict_json():
    score = Score3D(np.nan, 2.0, 3.0, {"snout": np.nan}, {"cam_a": 1.0}, 4)
    assert score.to_dict()["mpjpe"] is None and score.to_dict()["per_joint"] == {"snout": None}
