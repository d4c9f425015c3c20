"""The Multi-view 3D widget in a real viewer on a tiny synthetic 3-camera session."""

import dataclasses
import fcntl
import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import has_opengl
from napari.layers import Image, Points, Vectors

from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.multiview.calibration import read_calibration, write_calibration
from bkind_model.multiview.results import Result3D
from bkind_model.multiview.synthetic import (
    MultiViewConfig,
    load_ground_truth_3d,
    write_multiview_sample,
)
from bkind_model.multiview.training import Status3D
from bkind_model.multiview.views import ViewsError, open_session
from napari_bkind._multiview_widget import (
    POINTS_3D,
    SKELETON_3D,
    MultiViewWidget,
    grid_of,
    reprojected_name,
)

WAIT_MS = 60_000
CAMERAS = ["cam_a", "cam_b", "cam_c"]
N_FRAMES, N_KEYPOINTS = 24, 4
#: Settings that train a step in a fraction of a second on a CPU.
MORE = {"batch_size": 2, "frame_gap": 3, "width": 16, "threads": 2, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Three 24-frame 96x96 views and their calibration."""
    folder = tmp_path_factory.mktemp("session")
    return write_multiview_sample(folder, MultiViewConfig(n_frames=N_FRAMES, image_size=(96, 96)))


def _widget(viewer, qtbot, sample, tmp_path, steps=3):
    widget = MultiViewWidget(viewer)
    qtbot.addWidget(widget)
    widget.videos.setText("; ".join(str(v) for v in reversed(sample.videos)))
    widget.calibration.setText(str(sample.calibration))
    widget.run_folder.setText(str(tmp_path / "run"))
    widget.n_keypoints.setValue(N_KEYPOINTS)
    widget.image_size.setValue(64)
    widget.minutes.setValue(0)  # exact steps
    widget.steps.setValue(steps)
    widget.more.setText(json.dumps(MORE))
    return widget


def _wait(widget, qtbot):
    assert widget.busy
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)


def _check(widget, qtbot):
    widget.check_button.click()
    _wait(widget, qtbot)
    assert widget.opened is not None, widget.message.text()


def _released(folder):
    """Whether nobody holds the run folder's lock (flock: a new descriptor conflicts)."""
    try:
        fd = os.open(folder / ".lock", os.O_RDWR)
    except FileNotFoundError:  # the holder removed it on release
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _keypoints_drawn(viewer):
    """Strongly coloured (keypoint) pixels in the grid's cells of the three cameras (2x2)."""
    image = viewer.screenshot(canvas_only=True)[..., :3].astype(int)
    coloured = image.max(-1) - image.min(-1) > 120
    h, w = coloured.shape[0] // 2, coloured.shape[1] // 2
    return [int(coloured[:h, :w].sum()), int(coloured[:h, w:].sum()), int(coloured[h:, :w].sum())]


def test_check_lists_the_cameras_and_synchronised_frames(viewer, qtbot, sample, tmp_path):
    widget = _widget(viewer, qtbot, sample, tmp_path)
    assert not widget.show_button.isEnabled()
    widget.offsets.setText("cam_b=1")
    _check(widget, qtbot)
    rows = [
        [widget.table.item(r, c).text() for c in range(widget.table.columnCount())]
        for r in range(widget.table.rowCount())
    ]
    assert rows == [
        ["cam_a", "cam_a.mp4", "24", "30", "0"],
        ["cam_b", "cam_b.mp4", "24", "30", "1"],
        ["cam_c", "cam_c.mp4", "24", "30", "0"],
    ]
    assert "23 synchronised frames at 30 fps" in widget.summary.text()
    assert widget.show_button.isEnabled() and widget.train_button.isEnabled()
    widget.offsets.setText("")  # a changed session must be checked again
    assert widget.opened is None and not widget.show_button.isEnabled()


def test_cameras_matching_no_video_show_the_engines_message(viewer, qtbot, sample, tmp_path):
    renamed = [
        dataclasses.replace(c, name=f"side_{i}")
        for i, c in enumerate(read_calibration(sample.calibration))
    ]
    other = write_calibration(tmp_path / "other.toml", renamed)
    with pytest.raises(ViewsError) as expected:
        open_session(list(reversed(sample.videos)), other)  # the widget's order
    widget = _widget(viewer, qtbot, sample, tmp_path)
    widget.calibration.setText(str(other))
    widget.check_button.click()
    _wait(widget, qtbot)
    assert widget.message.text() == str(expected.value)
    assert "matches no" in widget.message.text()
    assert widget.opened is None and widget.table.rowCount() == 0


def test_show_views_adds_one_image_per_camera_in_the_grid(viewer, qtbot, sample, tmp_path):
    widget = _widget(viewer, qtbot, sample, tmp_path)
    widget.offsets.setText("cam_c=1")
    _check(widget, qtbot)
    widget.show_button.click()
    assert [layer.name for layer in viewer.layers] == CAMERAS
    assert all(isinstance(layer, Image) and layer.rgb for layer in viewer.layers)
    assert viewer.layers["cam_a"].data.shape == (N_FRAMES - 1, 1, 96, 96, 3)
    grid = grid_of(viewer)
    assert grid.enabled and viewer.dims.ndisplay == 2
    cells = {grid.position(i, viewer.layers) for i in range(3)}
    assert len(cells) == 3  # one cell per camera


@pytest.mark.slow
def test_train_extract_show_and_export(viewer, qtbot, sample, tmp_path):
    widget = _widget(viewer, qtbot, sample, tmp_path)
    _check(widget, qtbot)
    widget.train_button.click()
    assert not widget.check_button.isEnabled() and widget.cancel_button.isEnabled()
    _wait(widget, qtbot)
    run = tmp_path / "run"
    assert widget.message.text() == ""
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert widget.plot.steps == [1, 2, 3]
    assert "stopped at step 3/3" in widget.status.text()
    assert _released(run)

    widget.extract_button.click()
    _wait(widget, qtbot)
    assert widget.message.text() == ""
    result = Result3D.load(run / "keypoints3d.h5")
    points = viewer.layers[POINTS_3D]
    assert isinstance(points, Points)
    assert points.data.shape == (N_FRAMES * N_KEYPOINTS, 4)
    np.testing.assert_allclose(points.data[:N_KEYPOINTS, 1:], result.points[0], rtol=1e-6)
    skeleton = viewer.layers[SKELETON_3D]
    assert isinstance(skeleton, Vectors)
    assert skeleton.data.shape == (N_FRAMES * (N_KEYPOINTS - 1), 2, 4)
    grid = grid_of(viewer)
    cells = set()
    for v, camera in enumerate(CAMERAS):
        reprojected = viewer.layers[reprojected_name(camera)]
        assert reprojected.data.shape == (N_FRAMES * N_KEYPOINTS, 4)
        yx = reprojected.data[:N_KEYPOINTS, 2:]
        np.testing.assert_allclose(yx, result.reprojected[0, v][:, ::-1], rtol=1e-5)
        image = viewer.layers.index(camera)
        cell = grid.position(image, viewer.layers)
        assert grid.position(viewer.layers.index(reprojected), viewer.layers) == cell
        cells.add(cell)
    assert len(cells) == 3 and grid.enabled

    widget.view_3d_button.click()
    assert viewer.dims.ndisplay == 3 and points.visible and skeleton.visible
    assert not viewer.layers["cam_a"].visible and not grid.enabled
    widget.view_3d_button.click()
    assert viewer.dims.ndisplay == 2 and viewer.layers["cam_a"].visible and not points.visible

    for index, name in enumerate(["copy.h5", "pose3d.csv", "points3d.h5"]):
        widget.export_format.setCurrentIndex(index)
        widget.export_path.setText(str(tmp_path / name))
        widget.export_button.click()
        _wait(widget, qtbot)
        assert widget.message.text() == ""
    assert Result3D.load(tmp_path / "copy.h5").points.shape == (N_FRAMES, N_KEYPOINTS, 3)
    table = pd.read_csv(tmp_path / "pose3d.csv")
    assert len(table) == N_FRAMES
    np.testing.assert_allclose(table["kp0_x"], result.points[:, 0, 0], rtol=1e-5)
    with h5py.File(tmp_path / "points3d.h5", "r") as f:
        assert f["tracks"].shape == (N_FRAMES, 1, N_KEYPOINTS, 3)


@pytest.mark.slow
def test_cancel_keeps_a_checkpoint_that_resumes(viewer, qtbot, sample, tmp_path):
    widget = _widget(viewer, qtbot, sample, tmp_path, steps=500)
    _check(widget, qtbot)
    widget.train_button.click()
    qtbot.waitUntil(lambda: bool(widget.plot.steps), timeout=WAIT_MS)
    widget.cancel_button.click()
    _wait(widget, qtbot)
    run = tmp_path / "run"
    stopped = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 1 <= stopped < 500
    assert _released(run)

    widget.steps.setValue(stopped + 1)
    widget.train_button.click()
    _wait(widget, qtbot)
    assert widget.plot.steps == [stopped + 1]  # continued from the checkpoint
    assert load_checkpoint(run / "checkpoint.pt")["step"] == stopped + 1


def test_the_status_line_says_when_a_run_resumes():
    resumed = Status3D(7, 10, "cpu", tuple(CAMERAS), None)
    assert MultiViewWidget._run_start_text(resumed).startswith("resuming")
    fresh = dataclasses.replace(resumed, step=0)
    assert MultiViewWidget._run_start_text(fresh).startswith("training from scratch")


@pytest.mark.skipif(not has_opengl(), reason="draws the canvas: needs a display with OpenGL")
def test_keypoints_stay_drawn_in_every_cell_after_the_3d_view(
    make_napari_viewer, qtbot, sample, tmp_path
):
    viewer = make_napari_viewer(show=True)
    widget = _widget(viewer, qtbot, sample, tmp_path)
    _check(widget, qtbot)
    truth = load_ground_truth_3d(sample.ground_truth)
    joints = slice(0, N_KEYPOINTS)
    result = Result3D(
        truth.joints3d[:, joints],
        truth.joints2d[:, :, joints],
        truth.joints2d[:, :, joints],
        np.full((N_FRAMES, 3, N_KEYPOINTS), 1 / 3),
        np.array([[0, 1], [1, 2], [2, 3]]),
        np.ones(3),
        {
            "camera_names": CAMERAS,
            "cameras": [c.to_dict() for c in read_calibration(sample.calibration)],
        },
    )
    widget._show_result((result.save(tmp_path / "truth.h5"), result))
    qtbot.wait(200)
    assert all(_keypoints_drawn(viewer))
    widget.view_3d_button.click()
    qtbot.wait(200)
    widget.view_3d_button.click()
    qtbot.wait(200)
    assert all(_keypoints_drawn(viewer)), _keypoints_drawn(viewer)
