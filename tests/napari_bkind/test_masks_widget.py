"""The *Shadows & masks* widget in a real viewer: background, live preview, static mask, warnings."""

import numpy as np
import pytest
from conftest import has_opengl
from napari.layers import Image, Labels
from PIL import Image as PILImage

from bkind_model.frames.masks import SHADOW, STATIC
from bkind_model.synthetic import SyntheticConfig, write_sample
from bkind_model.train.loop import Trainer
from napari_bkind import _masks_widget
from napari_bkind._masks_widget import (
    BACKGROUND_LAYER,
    PREVIEW_LAYER,
    STATIC_LAYER,
    MasksWidget,
    static_mask_path,
)
from napari_bkind._session import training_setup
from napari_bkind._train_widget import TrainWidget

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def shadow_video(tmp_path_factory):
    """A 60-frame 128x128 synthetic mp4 whose animal casts a shadow."""
    path = tmp_path_factory.mktemp("shadow") / "shadowed.mp4"
    write_sample(path, SyntheticConfig(height=128, width=128, n_frames=60, seed=1, shadow=True))
    return path


@pytest.fixture
def still_video(tmp_path):
    """A folder of 12 identical 64x48 frames: nothing ever moves."""
    folder = tmp_path / "still"
    folder.mkdir()
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(12):
        PILImage.fromarray(frame).save(folder / f"frame{i}.png")
    return folder


@pytest.fixture
def captured(monkeypatch):
    """The widget module's warnings and errors, as ``{"warning": [...], "error": [...]}``."""
    shown = {"warning": [], "error": []}
    monkeypatch.setattr(_masks_widget, "show_warning", shown["warning"].append)
    monkeypatch.setattr(_masks_widget, "show_error", shown["error"].append)
    monkeypatch.setattr(_masks_widget, "show_info", lambda message: None)
    return shown


def _open(viewer, path, qtbot, frame: int = 0) -> MasksWidget:
    viewer.open(str(path), plugin="napari-bkind")
    viewer.dims.set_current_step(0, frame)
    widget = MasksWidget(viewer)
    widget.preview.value = True  # the background method builds the background first
    qtbot.waitUntil(lambda: widget.idle and PREVIEW_LAYER in viewer.layers, timeout=WAIT_MS)
    return widget


def test_background_layer_and_shadow_preview(viewer, shadow_video, qtbot, captured):
    widget = _open(viewer, shadow_video, qtbot, frame=30)  # the background method builds it first
    background = viewer.layers[BACKGROUND_LAYER]
    assert isinstance(background, Image) and background.data.shape == (128, 128, 3)
    assert viewer.layers.index(background) == 1  # just above the video
    assert "median of 60 frames" in widget.background_info.value
    preview = viewer.layers[PREVIEW_LAYER]
    assert isinstance(preview, Labels) and preview.data.shape == (128, 128)
    assert (preview.data == SHADOW).sum() > 20
    assert widget.fractions.value.startswith("frame 30: animal ")
    assert not captured["warning"] and not captured["error"]
    widget.preview.value = False
    assert PREVIEW_LAYER not in viewer.layers


@pytest.mark.slow
def test_the_preview_shows_the_mask_training_applies(
    viewer, shadow_video, qtbot, captured, tmp_path
):
    widget = _open(viewer, shadow_video, qtbot, frame=30)
    widget.use_masks.value = True
    qtbot.waitUntil(lambda: widget.idle, timeout=WAIT_MS)  # the preview of these settings
    shown = viewer.layers[PREVIEW_LAYER].data.copy()
    config = TrainWidget(viewer).config()
    trainer = Trainer([shadow_video], tmp_path / "run", config)
    prepared = trainer.videos[0]
    applied = prepared.pipeline.labels(prepared.frames[np.array([30])])[0]
    assert shown.shape == applied.shape == trainer.letterbox.resized_size
    np.testing.assert_array_equal(shown, applied)
    assert (shown == SHADOW).sum() > 20


def test_building_the_background_can_be_cancelled(viewer, video, qtbot, captured):
    viewer.open(str(video), plugin="napari-bkind")
    widget = MasksWidget(viewer)
    widget.preview.value = False
    widget.build_background()
    assert widget.build_button.text == "Cancel building"
    widget.build_background()  # the button cancels while it runs
    qtbot.waitUntil(lambda: widget.idle, timeout=WAIT_MS)
    assert widget.build_button.text == "Build background"
    assert widget.background_info.value == "background: not built"
    assert BACKGROUND_LAYER not in viewer.layers and not captured["error"]


def test_threshold_and_frame_changes_update_the_preview(viewer, shadow_video, qtbot, captured):
    widget = _open(viewer, shadow_video, qtbot)
    preview = viewer.layers[PREVIEW_LAYER]
    before = preview.data.copy()
    widget.chroma.value = 0.0  # no pixel keeps its colour exactly: (almost) no shadow
    qtbot.waitUntil(
        lambda: widget.idle and not np.array_equal(preview.data, before), timeout=WAIT_MS
    )
    assert (preview.data == SHADOW).sum() < (before == SHADOW).sum()
    assert training_setup(viewer).masks is None  # "Use masks" is off by default
    viewer.dims.set_current_step(0, 45)
    qtbot.waitUntil(lambda: widget.fractions.value.startswith("frame 45:"), timeout=WAIT_MS)


def test_painted_static_mask_is_saved_and_used_for_training(viewer, video, qtbot, captured):
    widget = _open(viewer, video, qtbot)
    widget.use_masks.value = True
    widget.method.value = "colour"
    widget.value_high.value = 0.5
    layer = widget.paint_static_mask()
    assert viewer.layers[STATIC_LAYER] is layer and layer.data.shape == (128, 128)
    assert layer.mode == "paint"
    data = layer.data.copy()
    data[:10, :20] = 1
    layer.data = data  # as a paint stroke ends
    masks = training_setup(viewer).masks
    assert masks.static_mask == str(static_mask_path(video))
    assert static_mask_path(video) == video.with_name("mouse.static_mask.npy")
    saved = np.load(masks.static_mask)
    assert saved.shape == (128, 128) and saved.sum() == 200
    assert masks == widget.settings() and masks.method == "colour"
    assert masks.value == (0.0, 0.5)
    assert TrainWidget(viewer).config().masks == widget.settings()
    qtbot.waitUntil(lambda: widget.idle, timeout=WAIT_MS)
    assert (viewer.layers[PREVIEW_LAYER].data[:10, :20] == STATIC).all()
    assert "static 1.2%" in widget.fractions.value

    widget.use_masks.value = False
    assert training_setup(viewer).masks is None and TrainWidget(viewer).config().masks is None
    data[:] = 0
    layer.data = data  # erased: no static mask any more
    assert widget.mask_settings().static_mask is None


def test_a_colour_range_that_selects_nothing_is_reported(viewer, video, qtbot, captured):
    widget = _open(viewer, video, qtbot)
    widget.method.value = "colour"
    widget.saturation_low.value = 1.0  # pure colours only: there are none
    qtbot.waitUntil(lambda: bool(captured["warning"]), timeout=WAIT_MS)
    (message,) = captured["warning"]
    assert "The colour range selects nothing (0.00% of the pixels)" in message
    assert "widen the hue, saturation and value ranges" in message
    assert "animal 0.0%" in widget.fractions.value


def test_an_inverted_range_is_refused_and_training_keeps_the_last_settings(
    viewer, video, qtbot, captured
):
    widget = _open(viewer, video, qtbot)
    widget.use_masks.value = True
    kept = training_setup(viewer).masks
    widget.ratio_low.value = 0.99  # above the high limit (0.95)
    assert "shadow_ratio must be (low, high)" in widget.status.value
    assert captured["warning"] and "last valid" in captured["warning"][0]
    assert training_setup(viewer).masks == kept


def test_a_static_mask_of_the_wrong_size_is_refused(viewer, video, qtbot, tmp_path, captured):
    widget = _open(viewer, video, qtbot)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((64, 80), np.uint8))
    widget.static_file.value = wrong
    (message,) = captured["error"]
    assert "80x64 px but the video is 128x128 px" in message
    assert STATIC_LAYER not in viewer.layers


def test_a_background_of_a_still_video_is_reported(viewer, still_video, qtbot, captured):
    widget = _open(viewer, still_video, qtbot)
    # nothing moves, so the whole frame is the model's view: 64x48 px scaled to 96 px wide
    assert viewer.layers[BACKGROUND_LAYER].data.shape == (72, 96, 3)
    assert np.allclose(viewer.layers[BACKGROUND_LAYER].scale, [2 / 3, 2 / 3])
    assert any("almost no change" in m and "colour method" in m for m in captured["warning"])
    assert "0.0% of a frame moves" in widget.background_info.value


def test_opened_from_the_plugins_menu_it_sets_the_training_masks(
    make_napari_viewer, plugins, shadow_video, qtbot, captured
):
    if not has_opengl():
        pytest.skip("napari windows need an X server (install Xvfb)")
    viewer = make_napari_viewer()
    viewer.open(str(shadow_video), plugin="napari-bkind")
    [video] = viewer.layers
    dock, masks = viewer.window.add_plugin_dock_widget("napari-bkind", "Shadows & masks")
    _, train = viewer.window.add_plugin_dock_widget("napari-bkind", "Train")
    qtbot.wait(50)
    assert masks.task is None and len(viewer.layers) == 1  # nothing is built unasked
    masks.preview.value = True
    qtbot.waitUntil(lambda: masks.idle and PREVIEW_LAYER in viewer.layers, timeout=WAIT_MS)
    assert BACKGROUND_LAYER in viewer.layers
    assert viewer.layers.selection.active is video  # the previews do not take the selection
    masks.use_masks.value = True
    masks.paint_static_mask().data = np.eye(128, dtype=np.uint8)
    assert train.config().masks.static_mask == str(static_mask_path(shadow_video))
    viewer.dims.set_current_step(0, 10)  # a preview is due when the dock is closed
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: PREVIEW_LAYER not in viewer.layers, timeout=WAIT_MS)
    assert [layer.name for layer in viewer.layers] == ["shadowed", STATIC_LAYER]
    assert not masks.idle
