"""The *Name bodyparts* widget in a real viewer: propose, label, fit, correct, export."""

import shutil

import numpy as np
import pandas as pd
import pytest
from napari.layers import Points, Vectors
from napari.utils.key_bindings import KeyBinding

from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import load_ground_truth
from napari_bkind._naming_widget import (
    PREDICTIONS_LAYER,
    SKELETON_LAYER,
    NameBodypartsWidget,
)

WAIT_MS = 60_000
NAMES = ["snout", "neck", "tail_base"]


@pytest.fixture
def named_video(video, tmp_path):
    """The video (copied) with discovered keypoints made of its true joints (1 px noise)."""
    copy = tmp_path / "mouse.mp4"
    shutil.copy(video, copy)
    shutil.copy(video.with_name("mouse.groundtruth.npz"), tmp_path)
    truth = load_ground_truth(copy)
    joints = truth.joints[:, 0].astype(np.float64)
    rng = np.random.default_rng(0)
    mix = rng.dirichlet(np.full(joints.shape[1], 0.3), size=6)
    keypoints = np.einsum("kj,tjd->tkd", mix, joints) + rng.normal(0, 1.0, (len(joints), 6, 2))
    t = len(joints)
    result = KeypointResult(
        keypoints.astype(np.float32),
        np.full((t, 6), 5.0, np.float32),
        np.tile(4.0 * np.eye(2), (t, 6, 1, 1)).astype(np.float32),
        {"video_path": str(copy), "fps": 30.0, "frame_size": [128, 128]},
    )
    path = result.save(tmp_path / "mouse.bkind.h5")
    truth_names = list(truth.joint_names)
    return path, joints[:, [truth_names.index(n) for n in NAMES]]


def _label_frame(layer, frame, truth):
    """Click every bodypart of ``frame`` in order, as a user does."""
    for x, y in truth[frame]:
        layer.add([[frame, y, x]])


def test_label_fit_correct_refit_export(viewer, named_video, qtbot, tmp_path):
    results, truth = named_video
    viewer.add_image(np.zeros((len(truth), 128, 128), np.uint8), name="video")
    widget = NameBodypartsWidget(viewer)
    widget.results.value = results
    widget.names.value = ", ".join(NAMES)
    widget.skeleton.value = "snout-neck, neck-tail_base"
    widget.n_propose.value = 10
    assert "next bodypart" in widget.native.toolTip()

    widget.propose()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert len(widget.frames) == 10
    layer = widget.labels_layer()
    assert isinstance(layer, Points)
    assert viewer.dims.current_step[0] == widget.frames[0]  # proposal goes to the first
    for i, frame in enumerate(widget.frames):
        if i:
            assert widget.step_frame(1) == frame
        _label_frame(layer, frame, truth)
    assert list(layer.features["label"][:3]) == NAMES
    assert (layer.features["id"] == "").all()
    # The same bodypart clicked again on a frame moves it: one point per bodypart.
    first = widget.frames[0]
    widget.viewer.dims.set_current_step(0, first)
    widget.current = 0
    widget.step_bodypart(0)
    layer.add([[first, truth[first, 0, 1] + 3, truth[first, 0, 0]]])
    assert len(layer.data) == 3 * len(widget.frames)

    widget.fit()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    predictions = viewer.layers[PREDICTIONS_LAYER]
    assert list(predictions.features["keypoint"].cat.categories) == NAMES
    assert len(predictions.data) == 3 * len(truth)
    assert isinstance(viewer.layers[SKELETON_LAYER], Vectors)
    assert len(viewer.layers[SKELETON_LAYER].data) == 2 * len(truth)
    named = KeypointResult.load(tmp_path / "mouse.named.bkind.h5")
    others = np.setdiff1d(np.arange(len(truth)), widget.frames)
    error = np.linalg.norm(named.keypoints[others] - truth[others], axis=-1).mean()
    body = np.linalg.norm(truth[:, 0] - truth[:, 2], axis=-1).mean()
    assert error < 0.2 * body

    # Correct a frame the map got most wrong, then refit (the earlier output is replaced).
    worst = int(
        others[np.argmax(np.linalg.norm(named.keypoints[others] - truth[others], axis=-1).sum(1))]
    )
    widget.viewer.dims.set_current_step(0, worst)
    widget.correct_frame()
    layer = widget.labels_layer()
    on_frame = layer.data[:, 0] == worst
    assert on_frame.sum() == 3
    layer.data[np.flatnonzero(on_frame)] = np.column_stack(
        [np.full(3, worst), truth[worst, :, 1], truth[worst, :, 0]]
    )
    widget.refit_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert widget.naming.map.source["n_labelled"] == len(widget.frames)

    widget.folder.value = tmp_path / "labeled-data" / "mouse"
    widget.n_refine.value = 4
    widget.export()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    table = pd.read_hdf(tmp_path / "labeled-data" / "mouse" / "machinelabels-iter0.h5")
    assert table.shape == (4, 9)
    assert (tmp_path / "labeled-data" / "mouse" / "CollectedData_bkind.h5").is_file()


def test_shortcuts_move_between_frames_and_bodyparts(viewer, named_video, qtbot):
    results, truth = named_video
    viewer.add_image(np.zeros((len(truth), 128, 128), np.uint8), name="video")
    widget = NameBodypartsWidget(viewer)
    widget.results.value = results
    widget.names.value = ", ".join(NAMES)
    widget.frames = [5, 20, 40]
    viewer.dims.set_current_step(0, 0)
    viewer.keymap[KeyBinding.from_str(".")](viewer)
    assert viewer.dims.current_step[0] == 5
    viewer.keymap[KeyBinding.from_str(".")](viewer)
    viewer.keymap[KeyBinding.from_str(",")](viewer)
    assert viewer.dims.current_step[0] == 5
    layer = widget.labels_layer()
    layer.keymap[KeyBinding.from_str("n")](layer)
    assert layer.feature_defaults["label"][0] == "neck"
    layer.keymap[KeyBinding.from_str("b")](layer)
    layer.keymap[KeyBinding.from_str("b")](layer)
    assert layer.feature_defaults["label"][0] == "tail_base"


def test_bad_input_is_a_notification_not_a_traceback(viewer, named_video, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("napari_bkind._tasks.show_error", shown.append)
    widget = NameBodypartsWidget(viewer)
    widget.fit()  # no keypoints chosen
    widget.results.value = named_video[0]
    widget.names.value = "snout, snout"
    widget.fit()
    bad = tmp_path / "CollectedData_x.csv"
    bad.write_text("not,a,labels,file\n")
    widget.dlc_labels.value = bad
    widget.import_labels()
    assert len(shown) == 3
    assert "no keypoints" in shown[0]
    assert "named twice" in shown[1]
    assert "CollectedData_x.csv" in shown[2]


def test_an_open_results_layer_is_offered_before_a_file(viewer, named_video, tmp_path):
    results, _ = named_video
    widget = NameBodypartsWidget(viewer)
    assert widget.chosen.path is None
    viewer.open(str(results), plugin="napari-bkind")
    assert widget.chosen.layer.value is viewer.layers["mouse.bkind keypoints"]
    assert widget.chosen.path == results and widget.keypoints().n_frames == 60
    other = shutil.copy(results, tmp_path / "other.bkind.h5")
    widget.results.value = other  # a file chosen: the layer is no longer
    assert widget.chosen.layer.value is None and widget.chosen.path == other
    assert widget.fit_button.native.text() == "Fit and predict"
