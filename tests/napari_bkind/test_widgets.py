"""The dock widgets in a real viewer: gap, training in a worker, cancel, discovery, display."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import has_opengl
from napari.layers import Image, Points, Shapes, Tracks

from bkind_model.config import DEFAULT_MINUTES
from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.io.results import KeypointResult
from napari_bkind import _gap_widget
from napari_bkind import _train_widget as train_module
from napari_bkind._discover_widget import DiscoverWidget
from napari_bkind._gap_widget import DISSIMILARITY_LAYER, NEXT_FRAME_LAYER, FrameGapWidget
from napari_bkind._keypoints_widget import ELLIPSE_LAYER, KeypointsWidget
from napari_bkind._train_widget import PREVIEW_LAYER, TrainWidget

WAIT_MS = 60_000


def _make_train_widget(viewer, tmp_path, steps, tiny):
    widget = TrainWidget(viewer)
    widget.n_keypoints.value = tiny["n_keypoints"]
    widget.image_size.value = tiny["image_size"]
    widget.minutes.value = 0  # exact steps
    widget.steps.value = steps
    more = {key: tiny[key] for key in ("batch_size", "width", "frame_gap", "threads")}
    widget.more.value = json.dumps(more | {"checkpoint_every": 1000})
    widget.run_folder.value = tmp_path / "run"
    return widget


def test_sample_data_loads_with_ground_truth_keypoints(viewer):
    viewer.open_sample("napari-bkind", "synthetic_animal")
    image, truth = viewer.layers
    assert image.data.shape[0] == 300 and image.rgb
    assert isinstance(truth, Points) and "keypoint" in truth.features
    assert truth.data[:, 0].max() == 299


def test_multiview_sample_gives_one_image_per_camera(viewer):
    viewer.open_sample("napari-bkind", "synthetic_multiview")
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    points = [layer for layer in viewer.layers if isinstance(layer, Points)]
    assert [image.name for image in images] == ["cam_a", "cam_b", "cam_c"]
    assert all(image.data.shape == (150, 192, 192, 3) and image.rgb for image in images)
    assert [image.metadata["camera"] for image in images] == ["cam_a", "cam_b", "cam_c"]
    assert len(points) == 3 and all(p.data[:, 0].max() == 149 for p in points)
    assert len({image.translate[2] for image in images}) == 3  # side by side


def test_gap_widget_suggests_a_gap_and_shows_the_pair(viewer, video, qtbot):
    viewer.open(str(video), plugin="napari-bkind")
    widget = FrameGapWidget(viewer)
    assert "128x128 px, 60 frames" in widget.info.value
    qtbot.waitUntil(lambda: "frames (" in widget.suggestion.value, timeout=WAIT_MS)
    assert widget.setup.frame_gap == widget.gap.value >= 1
    widget.gap.value = 4
    widget.preview.value = True
    qtbot.waitUntil(lambda: DISSIMILARITY_LAYER in viewer.layers, timeout=WAIT_MS)
    assert viewer.layers[NEXT_FRAME_LAYER].data.shape == (128, 128, 3)
    assert viewer.layers[DISSIMILARITY_LAYER].data.shape == (128, 128)
    widget.unit.value = "seconds"
    assert widget.gap.value == pytest.approx(4 / 30, abs=1e-3)
    assert widget.setup.gap_unit == "seconds"
    widget.preview.value = False
    assert NEXT_FRAME_LAYER not in viewer.layers


def test_a_gap_longer_than_the_video_is_reported(viewer, video, monkeypatch):
    viewer.open(str(video), plugin="napari-bkind")
    widget = FrameGapWidget(viewer)
    warnings = []
    monkeypatch.setattr(_gap_widget, "show_warning", warnings.append)
    widget.gap.value = 90
    assert warnings and "not shorter than the video" in warnings[0]


@pytest.mark.slow
def test_training_without_a_video_is_refused_clearly(viewer, monkeypatch, tmp_path, tiny):
    errors = []
    monkeypatch.setattr(train_module, "show_error", errors.append)
    _make_train_widget(viewer, tmp_path, 3, tiny).start()
    assert errors and "No video" in errors[0]


@pytest.mark.slow
def test_training_runs_in_a_worker_and_shows_keypoints(viewer, video, qtbot, tmp_path, tiny):
    viewer.open(str(video), plugin="napari-bkind")
    viewer.dims.set_current_step(0, 7)  # not one of the 16 preview frames
    widget = _make_train_widget(viewer, tmp_path, 3, tiny)
    widget.start()
    assert widget.task.running and not widget.start_button.enabled
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert PREVIEW_LAYER in viewer.layers
    preview = viewer.layers[PREVIEW_LAYER]
    assert preview.data.shape[1] == 3 and len(preview.data) == (16 + 1) * 4
    assert (preview.data[:, 0] == 7).sum() == 4  # the viewed frame has its keypoints
    assert widget.plot.steps == [1, 2, 3]
    assert widget.verdict.value
    assert widget.setup.checkpoint == str(tmp_path / "run" / "checkpoint.pt")
    assert load_checkpoint(widget.setup.checkpoint)["step"] == 3


@pytest.mark.slow
def test_cancel_leaves_a_checkpoint_that_resumes(viewer, video, qtbot, tmp_path, tiny):
    viewer.open(str(video), plugin="napari-bkind")
    widget = _make_train_widget(viewer, tmp_path, 500, tiny)
    widget.start()
    qtbot.waitUntil(lambda: bool(widget.plot.steps), timeout=WAIT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    stopped = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"]
    assert 1 <= stopped < 500
    left = {p.name for p in (tmp_path / "run").iterdir()}
    assert left == {"checkpoint.pt"}  # no temporary file, no lock file
    widget.steps.value = stopped + 2
    widget.start(resume=True)
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == stopped + 2


@pytest.mark.slow
def test_discover_adds_keypoints_and_display_controls_work(
    viewer, video, checkpoint, qtbot, tmp_path
):
    viewer.open(str(video), plugin="napari-bkind")
    discover = DiscoverWidget(viewer)
    discover.checkpoint.value = checkpoint
    discover.output.value = tmp_path / "found.bkind.h5"
    discover.run()
    qtbot.waitUntil(lambda: not discover.task.running, timeout=WAIT_MS)
    names = [layer.name for layer in viewer.layers]
    assert names[1:] == [
        "found.bkind keypoints",
        "found.bkind trajectories",
        "found.bkind heatmaps",
    ]

    widget = KeypointsWidget(viewer)
    points = viewer.layers["found.bkind keypoints"]
    assert widget.layer.value is points
    assert widget.threshold.value == 0.6  # the field's usual likelihood cut-off
    likelihood = points.features["likelihood"].to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()
    assert list(points.symbol) == ["ring" if v < 0.6 else "disc" for v in likelihood]
    for threshold in (float(np.median(likelihood)), 0.0, 1.0):
        widget.threshold.value = threshold
        cut = widget.threshold.value
        assert list(points.symbol) == ["ring" if v < cut else "disc" for v in likelihood]
    # colours follow the keypoint feature, so one keypoint keeps one colour
    ids = points.features["keypoint"].cat.codes.to_numpy()
    assert len({tuple(c) for c in points.face_color[ids == 0]}) == 1
    widget.trail.value = 25
    assert [t.tail_length for t in viewer.layers if isinstance(t, Tracks)] == [25]
    widget.names.value = True
    assert points.text.visible and points.text.values[0] == "kp0"
    viewer.dims.set_current_step(0, 5)
    widget.ellipses.value = True
    assert isinstance(viewer.layers[ELLIPSE_LAYER], Shapes)
    assert len(viewer.layers[ELLIPSE_LAYER].data) == 4
    widget.overlay.value = tmp_path / "overlay.mp4"
    widget.export()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert (tmp_path / "overlay.mp4").stat().st_size > 0


@pytest.mark.slow
def test_keypoint_colours_are_visible_on_the_canvas(
    make_napari_viewer, plugins, results, qtbot, tmp_path
):
    if not has_opengl():
        pytest.skip(
            "rendering the canvas needs an X server (install Xvfb; offscreen Qt has no OpenGL)"
        )
    # Four keypoints on a circle around the animal, so that no colour hides another.
    found = KeypointResult.load(results)
    centre = found.keypoints[:, :1].mean()
    angles = np.arange(found.n_keypoints) * 2 * np.pi / found.n_keypoints
    found.keypoints[:] = centre + 30 * np.stack([np.cos(angles), np.sin(angles)], -1)
    found.metadata["video_path"] = str(results.with_name("mouse.mp4"))
    spread = found.save(tmp_path / "spread.bkind.h5")

    viewer = make_napari_viewer(show=True)
    viewer.open(str(spread), plugin="napari-bkind")
    points = next(layer for layer in viewer.layers if isinstance(layer, Points))
    for layer in list(viewer.layers):
        layer.visible = layer is points
    points.size = 12
    viewer.dims.set_current_step(0, 0)
    viewer.reset_view()
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    colours = np.unique((points.face_color[:, :3] * 255).round().astype(int), axis=0)
    assert len(colours) == found.n_keypoints
    for colour in colours:
        assert (np.abs(shot - colour).sum(-1) < 30).sum() > 20, colour


@pytest.mark.slow
def test_cancel_while_preparing_stops_cleanly(viewer, video, qtbot, tmp_path, tiny):
    viewer.open(str(video), plugin="napari-bkind")
    widget = _make_train_widget(viewer, tmp_path, 3, tiny)
    widget.start()
    widget.cancel()  # before the worker has built the trainer
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert widget.start_button.enabled
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_plugins_menu_opens_every_widget_sharing_one_setup(
    make_napari_viewer, plugins, video, qtbot
):
    if not has_opengl():
        pytest.skip("napari windows need an X server (install Xvfb)")
    viewer = make_napari_viewer()
    viewer.open(str(video), plugin="napari-bkind")
    docked = {}
    for name in ("Video & frame gap", "Train", "Discover keypoints", "Keypoints"):
        _, docked[name] = viewer.window.add_plugin_dock_widget("napari-bkind", name)
    gap = docked["Video & frame gap"]
    qtbot.waitUntil(lambda: "frames (" in gap.suggestion.value, timeout=WAIT_MS)
    gap.gap.value = 5
    assert docked["Train"].config().frame_gap == 5  # each widget got its own viewer proxy


def test_training_in_a_fresh_napari_does_not_crash(plugins):
    """Torch imported after napari's OpenGL context (as in the app) must not segfault."""
    if not has_opengl():
        pytest.skip("napari windows need an X server (install Xvfb)")
    script = (
        "import napari, torch\n"  # torch alone is fine; its optimiser imports Triton
        "viewer = napari.Viewer(show=True)\n"
        "viewer.window.add_plugin_dock_widget('napari-bkind', 'Train')\n"
        "model = torch.nn.Linear(2, 2)\n"
        "torch.optim.AdamW(model.parameters())\n"
        "viewer.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_train_widget_says_how_long_training_takes_before_it_starts(viewer):
    widget = TrainWidget(viewer)
    assert widget.config().minutes == widget.minutes.value > 0  # a budget by default
    assert f"about {DEFAULT_MINUTES:g} min" in widget.expected.value and not widget.steps.enabled
    widget.minutes.value = 0
    assert widget.steps.enabled and f"{widget.steps.value} steps" in widget.expected.value
    assert widget.config().minutes is None
