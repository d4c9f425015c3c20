"""The Keypoints widget's overlay export: named skeleton, frame range, cancel, kept files."""

import numpy as np
import pytest

from bkind_model.io.overlay import keypoint_colors
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from napari_bkind import _tasks
from napari_bkind._keypoints_widget import KeypointsWidget

WAIT_MS = 60_000


@pytest.fixture
def named(video, tmp_path):
    """Named bodyparts of the 60-frame 128x128 video: nose - neck far apart, standing still."""
    keypoints = np.tile(np.float32([[30, 64], [90, 64], [64, 110]]), (60, 1, 1))
    metadata = {
        "video_path": str(video),
        "frame_size": [128, 128],
        "fps": 30.0,
        "kind": "named",
        "keypoint_names": ["nose", "neck", "tail"],
        "skeleton": [["nose", "neck"]],
    }
    result = KeypointResult(keypoints, np.ones((60, 3)), np.zeros((60, 3, 2, 2)), metadata)
    return result.save(tmp_path / "named.bkind.h5")


@pytest.fixture
def widget(viewer, named):
    viewer.open(str(named), plugin="napari-bkind")
    return KeypointsWidget(viewer)


def test_overlay_of_named_bodyparts_with_their_skeleton(widget, video, qtbot, tmp_path):
    assert widget.skeleton.value == "nose-neck"
    assert (widget.start.value, widget.stop.value) == (0, 60)
    widget.start.value, widget.stop.value = 10, 20
    widget.names.value = False
    widget.overlay.value = tmp_path / "named.mp4"
    widget.export()
    assert not widget.export_button.enabled and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert widget.export_button.enabled and not widget.cancel_button.enabled
    written = open_video(tmp_path / "named.mp4")
    assert written.n_frames == 10
    sample = written[0][64, 60].astype(int)  # on the nose-neck edge
    source = open_video(video)[10][64, 60].astype(int)
    blue = keypoint_colors(3)[0]
    assert np.abs(sample - blue).sum() < np.abs(sample - source).sum()


def test_cancel_and_an_existing_file_leave_files_as_they_were(
    widget, qtbot, tmp_path, monkeypatch
):
    errors = []
    monkeypatch.setattr(_tasks, "show_error", errors.append)
    out = tmp_path / "kept.mp4"
    widget.overlay.value = out
    widget.export()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert not out.exists() and not errors

    out.write_bytes(b"precious")
    widget.export()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert out.read_bytes() == b"precious"
    assert "kept.mp4: already exists" in errors[0] and "Replace an existing file" in errors[0]
    widget.replace.value = True
    widget.stop.value = 5
    widget.export()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert open_video(out).n_frames == 5
