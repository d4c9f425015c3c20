"""BKinD-3D end to end on a tiny synthetic session: train, resume, extract, score, export."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from bkind_model.cli import main
from bkind_model.errors import CheckpointError
from bkind_model.io.checkpoint import save_checkpoint
from bkind_model.multiview.cameras import Camera, CameraRig
from bkind_model.multiview.evaluation import evaluate_3d
from bkind_model.multiview.export import export_3d
from bkind_model.multiview.extraction import check_same_cameras, extract_3d, load_model_3d
from bkind_model.multiview.network import BKinD3D, ViewGeometry, square_letterbox
from bkind_model.multiview.results import Result3D, skeleton_edges
from bkind_model.multiview.settings import Settings3D
from bkind_model.multiview.synthetic import MultiViewConfig, write_multiview_sample
from bkind_model.multiview.training import Trainer3D, default_config_3d
from bkind_model.multiview.views import open_session

SMALL = {"image_size": 64, "batch_size": 2, "n_keypoints": 4, "frame_gap": 3.0}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("session")
    return write_multiview_sample(folder, MultiViewConfig(n_frames=24, image_size=(96, 96)))


@pytest.fixture(scope="module")
def session(sample):
    return open_session(sample.videos, sample.calibration)


def test_geometry_maps_pixels_both_ways(session):
    boxes = [square_letterbox(c.image_shape, 64) for c in session.cameras]
    geometry = ViewGeometry(list(session.cameras), boxes, "cpu")
    pixels = torch.rand(5, 3, 2) * 90
    offsets = torch.tensor([[-b.pad[1], -b.pad[0]] for b in boxes], dtype=torch.float32)
    back = geometry.to_pixels(geometry.to_normalised(pixels, offsets), offsets)
    assert torch.allclose(back, pixels, atol=1e-4)
    # The world point at the centre of attention lands inside every image.
    assert 0 < geometry.scene_scale < 10_000


def test_algebraic_forward_gives_consistent_3d(session):
    config = default_config_3d(**SMALL)
    model = BKinD3D(config, Settings3D(design="algebraic"))
    boxes = [square_letterbox(c.image_shape, 64) for c in session.cameras]
    geometry = ViewGeometry(list(session.cameras), boxes, "cpu")
    frames = torch.rand(2, 3, 3, 64, 64)
    offsets = torch.tensor([[[-b.pad[1], -b.pad[0]] for b in boxes]] * 2, dtype=torch.float32)
    views, _ = model.views(frames, offsets, geometry)
    assert views.points.shape == (2, 4, 3)
    assert torch.allclose(views.weights.sum(1), torch.ones(2, 4))
    assert views.scores is not None and ((views.scores > 0) & (views.scores <= 1)).all()
    projected = geometry.rig.project(views.points)  # (B, K, V, 2) px
    expected = geometry.to_pixels(views.reprojected.transpose(1, 2), offsets.unsqueeze(1))
    assert torch.allclose(projected, expected, atol=1e-3)
    views.points.sum().backward()
    assert model.net.head.out.weight.grad is not None
    assert torch.isfinite(model.net.head.out.weight.grad).all()
    assert float(model.edge_weights().detach().sum()) == pytest.approx(3.0)


def test_volumetric_points_lie_in_the_cube_around_the_animal(session):
    config = default_config_3d(**SMALL)
    model = BKinD3D(config, Settings3D(design="volumetric", grid=8))
    model.volume_side.fill_(100.0)
    boxes = [square_letterbox(c.image_shape, 64) for c in session.cameras]
    geometry = ViewGeometry(list(session.cameras), boxes, "cpu")
    offsets = torch.tensor([[[-b.pad[1], -b.pad[0]] for b in boxes]] * 2, dtype=torch.float32)
    centres = torch.tensor([[0.0, 0.0, 20.0], [50.0, -30.0, 20.0]])
    views, _ = model.views(torch.rand(2, 3, 3, 64, 64), offsets, geometry, centres)
    assert views.points.shape == (2, 4, 3)
    assert ((views.points - centres[:, None]).abs() <= 50.0).all()
    assert torch.equal(views.detected, views.reprojected) and views.scores is None
    # Each view alone: its own estimate (not the fused reprojection) and a 0-1 score.
    alone, _ = model.views(torch.rand(2, 3, 3, 64, 64), offsets, geometry, centres, True)
    assert alone.detected.shape == alone.reprojected.shape == (2, 3, 4, 2)
    assert not torch.allclose(alone.detected, alone.reprojected)
    assert alone.scores is not None and ((alone.scores > 0) & (alone.scores <= 1)).all()
    views.points.sum().backward()
    assert model.volume is not None and model.volume.reduce.weight.grad is not None
    with pytest.raises(ValueError, match="centres"):
        model.views(torch.rand(2, 3, 3, 64, 64), offsets, geometry)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["algebraic", "volumetric"])
def test_train_resume_extract_score_export(session, sample, tmp_path, design):
    run = tmp_path / "run"
    settings = Settings3D(design=design, grid=8)
    trainer = Trainer3D(session, run, default_config_3d(steps=2, minutes=None, **SMALL), settings)
    events = list(trainer.run())
    trainer.close()
    assert [e.step for e in events] == [1, 2]
    assert "reconstruction" in events[-1].losses
    assert ("consistency" in events[-1].losses) == (design == "algebraic")
    assert (run / "checkpoint.pt").is_file()
    assert len(trainer.crop_sizes) == 3

    again = Trainer3D(session, run, default_config_3d(steps=3, minutes=None, **SMALL), settings)
    assert again.step == 2
    assert [e.step for e in again.run()] == [3]
    again.close()

    result = extract_3d(run / "checkpoint.pt", session)
    assert result.points.shape == (24, 4, 3)
    assert result.detected.shape == result.reprojected.shape == (24, 3, 4, 2)
    rig = CameraRig(session.cameras)
    assert np.allclose(rig.project_numpy(result.points).transpose(0, 2, 1, 3),
                       result.reprojected, atol=0.05)  # fmt: skip
    errors = result.per_view_error()
    assert set(errors) == set(session.names)
    # Every design reports how far each view alone is from the 3D points (never 0 px).
    assert all(0 < e < 1e4 for e in errors.values())
    assert ((result.scores >= 0) & (result.scores <= 1)).all()
    path = result.save(tmp_path / "keypoints3d.h5")
    loaded = Result3D.load(path)
    assert np.array_equal(loaded.points, result.points)
    assert loaded.camera_names == session.names
    assert loaded.edges.shape == (3, 2)

    score = evaluate_3d(path, sample.ground_truth)
    assert np.isfinite([score.keypoints, score.centroid, score.mean_pose]).all()
    assert score.mean_pose > 0 and set(score.per_joint) >= {"snout", "tail_base"}

    table = pd.read_csv(export_3d(path, to="csv"))
    assert list(table.columns[:6]) == ["kp0_x", "kp0_y", "kp0_z", "kp0_error", "kp0_ncams",
                                       "kp0_score"]  # fmt: skip
    assert np.allclose(table["kp1_z"], result.points[:, 1, 2], atol=1e-3)
    assert (table["kp0_error"] > 0).any() and table["kp0_score"].between(0, 1).all()
    with h5py.File(export_3d(path, to="anipose"), "r") as f:
        assert f["tracks"].shape == (24, 1, 4, 3)


@pytest.mark.slow
def test_a_2d_checkpoint_or_other_cameras_are_refused(session, sample, tmp_path, tiny_video):
    run = tmp_path / "run2d"
    assert main(["train", str(tiny_video), "--out", str(run), "--steps", "1", "--image-size",
                 "64", "--batch", "2", "--keypoints", "4", "--gap", "2"]) == 0  # fmt: skip
    with pytest.raises(CheckpointError, match="2D checkpoint"):
        extract_3d(run / "checkpoint.pt", session)
    run3 = tmp_path / "run3"
    trainer = Trainer3D(session, run3, default_config_3d(steps=1, minutes=None, **SMALL))
    list(trainer.run())
    trainer.close()
    other = write_multiview_sample(
        tmp_path / "other", MultiViewConfig(n_frames=24, image_size=(96, 96), seed=5)
    )
    with pytest.raises(CheckpointError, match="another calibration"):
        extract_3d(run3 / "checkpoint.pt", open_session(other.videos, other.calibration))


def test_skeleton_is_a_spanning_tree():
    weights = np.array([0.9, 0.1, 0.05, 0.8, 0.2, 0.7])  # pairs of 4 keypoints
    edges = skeleton_edges(weights, 4)
    assert edges.tolist() == [[0, 1], [1, 2], [2, 3]]


@pytest.mark.slow
def test_cli_3d_commands(sample, tmp_path, capsys):
    videos = [str(v) for v in sample.videos]
    calibration = ["--calibration", str(sample.calibration)]
    run = tmp_path / "run"
    options = ["--steps", "2", "--image-size", "64", "--batch", "2", "--keypoints", "4",
               "--gap", "3"]  # fmt: skip
    assert main(["train3d", *videos, *calibration, "--out", str(run), *options]) == 0
    out = tmp_path / "k3d.h5"
    assert main(["extract3d", str(run), *videos, *calibration, "--out", str(out)]) == 0
    # Swapped videos: one line naming both cameras and the fix; --no-view-check goes on.
    swap = ["--views", f"cam_a={videos[1]}", f"cam_b={videos[0]}"]
    capsys.readouterr()
    assert main(["extract3d", str(run), *videos, *calibration, *swap, "--out",
                 str(tmp_path / "swapped.h5")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "'cam_a' and 'cam_b' look swapped" in err and "Traceback" not in err
    assert main(["extract3d", str(run), *videos, *calibration, *swap, "--no-view-check",
                 "--out", str(tmp_path / "swapped.h5")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate3d", str(out), str(sample.ground_truth)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"mpjpe", "centroid_mpjpe", "ratio_to_centroid", "reprojection_px"} <= set(scores)
    assert main(["export3d", str(out), "--to", "anipose"]) == 0
    # Without --out the results go into the run folder, given the folder or its checkpoint.
    for given in (run, run / "checkpoint.pt"):
        (run / "keypoints3d.h5").unlink(missing_ok=True)
        assert main(["extract3d", str(given), *videos, *calibration]) == 0
        assert (run / "keypoints3d.h5").is_file()
    # A view that matches no camera: one clear line naming the camera, no traceback.
    renamed = tmp_path / "side.mp4"
    renamed.write_bytes(sample.videos[0].read_bytes())
    bad = [str(renamed), *videos[1:]]
    assert main(["train3d", *bad, *calibration, "--out", str(tmp_path / "r2"), *options]) == 2
    err = capsys.readouterr().err
    assert "cam_a" in err and "Traceback" not in err
    # --views says which file is which camera.
    views = ["--views", f"cam_a={renamed}"]
    assert main(["train3d", *bad, *calibration, *views, "--out", str(tmp_path / "r3"),
                 *options]) == 0  # fmt: skip


@pytest.mark.slow
def test_a_refused_3d_resume_frees_the_run_folder(session, tmp_path):
    run = tmp_path / "run"
    config = default_config_3d(steps=1, minutes=None, **SMALL)
    trainer = Trainer3D(session, run, config, Settings3D(design="algebraic"))
    list(trainer.run())
    trainer.close()
    with pytest.raises(CheckpointError, match="other 3D settings") as refused:
        Trainer3D(session, run, config, Settings3D(design="volumetric"))
    take = f"from bkind_model.io.lock import RunLock; RunLock({str(run)!r})"
    assert subprocess.run([sys.executable, "-c", take], capture_output=True).returncode == 0
    assert refused.traceback is not None


def _state_3d(session) -> dict:
    config = default_config_3d(**SMALL, crop_size=0)
    model = BKinD3D(config, Settings3D(design="algebraic"))
    return {
        "config": config.to_dict(),
        "settings3d": Settings3D(design="algebraic").to_dict(),
        "model": model.state_dict(),
        "step": 1,
        "cameras": [c.to_dict() for c in session.cameras],
        "letterboxes": [square_letterbox(c.image_shape, 64).to_dict() for c in session.cameras],
    }


@pytest.mark.parametrize("key", ["cameras", "letterboxes"])
def test_garbage_3d_checkpoint_keys_are_one_clear_error(session, tmp_path, key):
    state = _state_3d(session)
    assert load_model_3d(save_checkpoint(tmp_path / "good.pt", state))[0].n_keypoints == 4
    for garbage in (["abc", "def", "ghi"], "abc", [{"name": 3}] * 3):
        path = save_checkpoint(tmp_path / "bad.pt", {**state, key: garbage})
        with pytest.raises(CheckpointError, match=f"bad.pt: key '{key}' holds"):
            load_model_3d(path)
    # Resuming a run from such a checkpoint: the same error, the run folder freed.
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", {**state, key: "abc"})
    config = default_config_3d(steps=1, minutes=None, **SMALL)
    for _ in range(2):
        with pytest.raises(CheckpointError, match=f"key '{key}' holds"):
            Trainer3D(session, run, config, Settings3D(design="algebraic"))
    save_checkpoint(run / "checkpoint.pt", {**state, "crop_sizes": ["abc"] * 3})
    with pytest.raises(CheckpointError, match="key 'crop_sizes' holds"):
        Trainer3D(session, run, config, Settings3D(design="algebraic"))


def test_same_calibration_check_includes_distortions(session):
    trained = list(session.cameras)
    check_same_cameras(trained, session, "run/checkpoint.pt")
    first = trained[0]
    huge = np.asarray(first.distortions) + np.array([1e6, 1e6, 0, 0, 1e6])
    other = Camera(first.name, first.size, first.matrix, huge,
                   first.rotation, first.translation)  # fmt: skip
    with pytest.raises(CheckpointError, match=f"camera '{first.name}' has another calibration"):
        check_same_cameras([other, *trained[1:]], session, "run/checkpoint.pt")
