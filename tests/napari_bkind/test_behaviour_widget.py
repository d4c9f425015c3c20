"""The Behaviour widget in a real viewer: bouts from shortcuts, train, predict, motifs, export."""

import numpy as np
import pytest
from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QMouseEvent

from bkind_model.behaviour.ethogram import read_ethograms
from bkind_model.behaviour.labels import write_intervals
from bkind_model.behaviour.synthetic import ground_truth_labels, ground_truth_result
from bkind_model.synthetic import SyntheticConfig, write_sample
from napari_bkind._behaviour_widget import NAME_PX, BehaviourWidget

WAIT_MS = 60_000
N_FRAMES = 900


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 900-frame synthetic video, its true joints as a results file and its states."""
    video = tmp_path_factory.mktemp("behaviour") / "mouse.mp4"
    write_sample(
        video,
        SyntheticConfig(height=64, width=64, n_frames=N_FRAMES, seed=5),
        with_masks=False,
        keep_frames=False,
    )
    results = ground_truth_result(video).save(video.with_suffix(".joints.h5"))
    return video, results


@pytest.fixture
def widget(viewer, sample):
    viewer.add_image(np.zeros((N_FRAMES, 4, 4), np.uint8), name="time")
    widget = BehaviourWidget(viewer)
    widget.results.value = sample[1]
    widget.names.value = "walk, turn, rear, groom, rest"
    return widget


def test_bouts_are_labelled_from_the_time_axis(viewer, widget):
    viewer.dims.set_current_step(0, 10)
    widget.mark_start()
    viewer.dims.set_current_step(0, 40)
    widget.behaviour.value = "groom"
    widget.mark_stop()
    viewer.dims.set_current_step(0, 30)
    widget.mark_start()
    viewer.dims.set_current_step(0, 20)  # backwards works too
    widget.unlabel()
    codes = widget.labels.codes("mouse.mp4", N_FRAMES)
    assert np.flatnonzero(codes == widget.labels.names.index("groom")).tolist() == [
        *range(10, 20),
        *range(31, 41),
    ]
    assert widget.plot.labels.shape == (N_FRAMES,)
    widget.names.value = "walk, turn, rear, rest"  # groom removed: its bouts go
    assert widget.labels.intervals == []
    assert widget.behaviour.choices == ("walk", "turn", "rear", "rest")


def test_train_predict_follow_jump_export(viewer, widget, sample, qtbot, tmp_path):
    labels_csv = tmp_path / "labels.csv"
    write_intervals(labels_csv, ground_truth_labels(sample[0]))
    widget.labels_file.value = labels_csv
    widget.load_labels()
    assert widget.labels.frame_counts()["walk"] > 0
    widget.train()
    qtbot.waitUntil(
        lambda: widget.ethogram is not None and not widget.task.running, timeout=WAIT_MS
    )
    truth = ground_truth_labels(sample[0]).codes("mouse.mp4", N_FRAMES)
    assert (widget.ethogram.codes == truth).mean() > 0.8  # trained and tested on one video
    assert widget.predict_button.enabled
    viewer.dims.set_current_step(0, 123)
    assert widget.plot.cursor == 123
    widget.plot.resize(NAME_PX + 900, 100)
    x = NAME_PX + 450.5  # halfway along the frames
    press = QMouseEvent(
        QMouseEvent.Type.MouseButtonPress,
        QPointF(x, 20),
        QPointF(x, 20),
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.plot.mousePressEvent(press)
    assert viewer.dims.current_step[0] == N_FRAMES // 2
    out = tmp_path / "ethogram.csv"
    widget.export_file.value = out
    widget.export()
    (written,) = read_ethograms(out)
    np.testing.assert_array_equal(written.codes, widget.ethogram.codes)
    before = out.read_bytes()
    widget.export()  # exists and replacing was not ticked: kept, and the status says why
    assert "Replace existing files" in widget.status.value
    assert out.read_bytes() == before


def test_motifs_are_named_and_become_labels(widget, qtbot):
    widget.n_motifs.value = 3
    widget.find_motifs()
    qtbot.waitUntil(
        lambda: widget.ethogram is not None and not widget.task.running, timeout=WAIT_MS
    )
    assert widget.ethogram.names == ["motif 1", "motif 2", "motif 3"]
    widget.ethogram_names.value = "moving, still, head"
    widget.rename()
    assert widget.ethogram.names == ["moving", "still", "head"]
    widget.use_as_labels()
    assert widget.labels.names == ["moving", "still", "head"]
    assert sum(widget.labels.frame_counts().values()) == N_FRAMES
    widget.ethogram_names.value = "one, two"
    widget.rename()  # a name missing: refused, the ethogram keeps its names
    assert widget.ethogram.names == ["moving", "still", "head"]
    assert "3 columns" in widget.status.value
