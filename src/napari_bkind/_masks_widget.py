"""Dock widget *Shadows & masks*: tune the masks training applies against shadows and clutter.

Choose the method (a background model finds shadows as darker floor; a colour range picks
the animal), tune its thresholds while a Labels layer previews the mask of the frame shown
(animal, shadow, static mask), see the background model as an Image layer (built when
asked: *Build background*, or turning the preview on), and paint a
static mask (walls, cables, a timestamp) on a Labels layer. The settings go into the
shared training setup, so the *Train* widget uses them and the checkpoint records them:
a run can be repeated. A painted static mask is saved as ``<video>.static_mask.npy``
beside the video and referenced by path. The preview and background layers are added
without taking the layer selection, and removed when the widget is closed.

The engine (:mod:`bkind_model.frames.masks`) does the work; its warnings (a colour range that
selects nothing or everything, a background of a video where the animal never moves) and
errors (a static mask of the wrong size) are shown as napari notifications.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

from bkind_model.config import Config, MaskSettings
from bkind_model.errors import ConfigError
from bkind_model.frames.background import Background, median_background
from bkind_model.frames.letterbox import Letterbox, resize_frames
from bkind_model.frames.masks import (
    ANIMAL,
    FLOOR,
    SHADOW,
    STATIC,
    FrameMasker,
    MaskError,
    load_static_mask,
    resize_mask,
    selection_problem,
)
from bkind_model.frames.pipeline import letterbox_for, sample_resized
from bkind_model.frames.windows import measure_crop_size
from bkind_model.io.atomic import atomic_path
from bkind_model.io.video import open_video
from napari_bkind._session import (
    SOURCE_KEY,
    beside_video,
    current_frame,
    insert_unselected,
    on_undocked,
    training_setup,
    training_videos,
)
from napari_bkind._tasks import Task, show_exception

BACKGROUND_LAYER = "B-KinD background"
STATIC_LAYER = "B-KinD static mask"
PREVIEW_LAYER = "B-KinD mask preview"

#: Colours of the preview's labels: floor transparent, animal green, shadow magenta, static grey.
PREVIEW_COLOURS = {
    None: "transparent",
    FLOOR: "transparent",
    ANIMAL: "lime",
    SHADOW: "magenta",
    STATIC: "gray",
}
#: Wait (ms) after the last change before the preview is recomputed (slider drags, playback).
PREVIEW_DELAY_MS = 80
#: Wait (ms) after the static mask layer was redrawn (undo, redo) before it is checked.
STATIC_DELAY_MS = 300


def static_mask_path(video_path: str | Path) -> Path:
    """Where the static mask painted for a video is saved: ``<stem>.static_mask.npy`` beside it."""
    return beside_video(video_path, f"{Path(video_path).stem}.static_mask.npy")


def save_mask(mask: np.ndarray, path: Path) -> None:
    """Write an ``(H, W)`` mask as ``.npy`` (uint8, 1 where ignored) atomically.

    Training never reads a half-written mask (:func:`bkind_model.io.atomic.atomic_path`).
    """
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, mask.astype(np.uint8))


def frame_size(video: Image) -> tuple[int, int]:
    """``(H, W)`` of a video layer's frames, pixels."""
    height, width = video.data.shape[1:3]
    return int(height), int(width)


@dataclass(frozen=True)
class VideoBackground:
    """A video's background at the scale training sees it (one pipeline for both).

    Attributes
    ----------
    letterbox : Letterbox
        The model's view of the video (the window crop size measured as training does).
    background : Background
        Median of the frames training samples for it, at :attr:`Letterbox.resized_size`.
    """

    letterbox: Letterbox
    background: Background

    @property
    def layer_scale(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(scale, translate)`` that lay model-scale pixels over the video's pixels."""
        (height, width), (h, w) = self.letterbox.source_size, self.letterbox.resized_size
        scale = (height / h, width / w)
        return scale, (scale[0] / 2 - 0.5, scale[1] / 2 - 0.5)


def _build_background(
    task: Task, source_path: str, crop_size: float | None, change: float
) -> tuple:
    """Sample frames as training does and take their median; warnings are returned as text.

    Returns
    -------
    source_path : str
        The video.
    background : VideoBackground
        Its empty arena at model scale.
    messages : list of str
        The engine's warnings (the animal never moves ...).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_video(source_path) as source:
            crop = measure_crop_size(source) if crop_size is None else crop_size
            letterbox = letterbox_for(Config(crop_size=crop), (source.height, source.width))
            samples = sample_resized(source, letterbox, progress=task.report)
        background = median_background(samples, change, check=True)
    return source_path, VideoBackground(letterbox, background), [str(w.message) for w in caught]


def _frame_labels(
    frames, t: int, masker: FrameMasker, size: tuple[int, int]
) -> tuple[int, np.ndarray]:
    """Frame ``t`` of a video layer's data at model scale ``size``, labelled: ``(h, w)`` uint8."""
    frame = resize_frames(np.asarray(frames[t])[None], size)
    return t, masker.labels(frame)[0]


def _spin(
    value: float,
    low: float,
    high: float,
    step: float,
    tooltip: str,
    label: str = "",
    decimals: int = 2,
) -> FloatSpinBox:
    """A spin box showing ``decimals`` digits after the point."""
    spin = FloatSpinBox(value=value, min=low, max=high, step=step, tooltip=tooltip, label=label)
    spin.native.setDecimals(decimals)
    return spin


def _pair(label: str, *spins: FloatSpinBox) -> Container:
    return Container(widgets=list(spins), layout="horizontal", labels=False, label=label)


class MasksWidget(Container):
    """Method, thresholds, live mask preview, background layer and static mask painting.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the video layers.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.setup = training_setup(napari_viewer)
        initial = self.setup.masks or MaskSettings()
        self.video = ComboBox(
            label="Video",
            choices=self._video_choices,
            tooltip="The video whose frames are previewed and whose static mask is painted",
        )
        self.use_masks = CheckBox(
            text="Use masks in training",
            value=self.setup.masks is not None,
            tooltip="Off: training sees the frames unmasked",
        )
        self.method = ComboBox(
            label="Method",
            choices=["background", "colour"],
            value=initial.method,
            tooltip="background: shadows are floor darker than the background model; "
            "colour: pixels in the HSV range are the animal, the rest is ignored",
        )
        self.use = ComboBox(
            label="Ignored pixels",
            choices=["fill", "black", "target"],
            value=initial.use,
            tooltip="fill: replaced by the background; black: set to black; target: kept in "
            "the input but left out of the reconstruction target",
        )
        self.hue_low = _spin(initial.hue[0], 0, 360, 5, "Lowest hue of the animal, degrees")
        self.hue_high = _spin(
            initial.hue[1], 0, 360, 5, "Highest hue, degrees (below the lowest: wraps through 0)"
        )
        self.saturation_low = _spin(initial.saturation[0], 0, 1, 0.05, "Lowest saturation")
        self.saturation_high = _spin(initial.saturation[1], 0, 1, 0.05, "Highest saturation")
        self.value_low = _spin(initial.value[0], 0, 1, 0.05, "Lowest value (brightness)")
        self.value_high = _spin(initial.value[1], 0, 1, 0.05, "Highest value (brightness)")
        self.colour_controls = Container(
            widgets=[
                _pair("Hue (degrees)", self.hue_low, self.hue_high),
                _pair("Saturation", self.saturation_low, self.saturation_high),
                _pair("Value", self.value_low, self.value_high),
            ]
        )
        self.change = _spin(
            initial.change,
            0.001,
            0.999,
            0.01,
            "A pixel whose mean R, G, B differs from the background by more than this "
            "fraction of full brightness (0.10 = 26 of 255) has changed: animal or shadow",
            label="Changed above (x255)",
            decimals=3,
        )
        self.ratio_low = _spin(
            initial.shadow_ratio[0],
            0,
            1,
            0.05,
            "Darkest shadow: its brightness as a fraction of the floor's (0.55 = 55%)",
        )
        self.ratio_high = _spin(
            initial.shadow_ratio[1],
            0,
            1,
            0.05,
            "Lightest shadow: its brightness as a fraction of the floor's (0.95 = 95%)",
        )
        self.chroma = _spin(
            initial.shadow_chroma,
            0,
            0.999,
            0.01,
            "A shadow darkens the floor without changing its colour: the largest change of "
            "chromaticity (r, g, b each divided by r + g + b, 0-1) still counted as shadow",
            label="Shadow colour shift",
            decimals=3,
        )
        self.build_button = PushButton(
            text="Build background",
            tooltip="The median of the frames training samples: the empty arena (takes a "
            "few seconds; turning the preview on builds it too)",
        )
        self.background_info = Label(value="background: not built")
        self.background_controls = Container(
            widgets=[
                self.change,
                _pair("Shadow brightness (x floor)", self.ratio_low, self.ratio_high),
                self.chroma,
                self.build_button,
                self.background_info,
            ]
        )
        self.cleanup = SpinBox(
            label="Cleanup (px)",
            value=initial.cleanup_px,
            min=0,
            max=50,
            tooltip="Radius of the opening that removes specks, pixels; holes are filled",
        )
        self.animal_prior = _spin(
            initial.animal_prior,
            0.0,
            1.0,
            0.005,
            "Weight of a training loss term that draws keypoints onto the animal (0: off; "
            "0.01 is the default, about 1% of the reconstruction loss). On keeps keypoints "
            "off shadows; off lets them predict the pose better",
            label="Keypoints-on-animal weight",
            decimals=3,
        )
        self.paint_button = PushButton(text="Paint static mask")
        self.static_file = FileEdit(
            label="Load static mask",
            mode="r",
            filter="*.npy *.png *.tif *.tiff",
            nullable=True,
            value=None,
            tooltip="A mask image of the video's size (nonzero: ignored), to paint on further",
        )
        self.preview = CheckBox(
            text="Preview the mask on the frame shown",
            value=False,
            tooltip="Label the frame shown: animal green, shadow magenta, static mask grey "
            "(the background method builds the background first)",
        )
        self.fractions = Label(value="")
        self.status = Label(value="")
        super().__init__(
            widgets=[
                self.video,
                self.use_masks,
                self.method,
                self.use,
                self.colour_controls,
                self.background_controls,
                self.cleanup,
                self.animal_prior,
                self.paint_button,
                self.static_file,
                self.preview,
                self.fractions,
                self.status,
            ]
        )
        #: Background models by video path.
        self.backgrounds: dict[str, VideoBackground] = {}
        self.task: Task | None = None
        self._static_path: str | None = None
        self._saved: tuple[str, np.ndarray] | None = None  # last static mask written
        self._shown_warning: str | None = None
        self._selection_checked: tuple | None = None
        self._closed = False
        on_undocked(self.native, self._closing)
        self._preview_busy = False
        self._preview_pending = False
        self._auto_built: set[str] = set()  # videos whose background build was started
        self._preview_timer = QTimer(self.native)  # stops with the widget
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._request_preview)
        self._static_timer = QTimer(self.native)
        self._static_timer.setSingleShot(True)
        self._static_timer.setInterval(STATIC_DELAY_MS)
        self._static_timer.timeout.connect(self._static_redrawn)

        for control in (
            self.use_masks,
            self.method,
            self.use,
            self.hue_low,
            self.hue_high,
            self.saturation_low,
            self.saturation_high,
            self.value_low,
            self.value_high,
            self.change,
            self.ratio_low,
            self.ratio_high,
            self.chroma,
            self.cleanup,
            self.animal_prior,
        ):
            control.changed.connect(self._settings_changed)
        self.video.changed.connect(self._video_changed)
        self.preview.changed.connect(self._preview_changed)
        self.build_button.changed.connect(self.build_background)
        self.paint_button.changed.connect(self.paint_static_mask)
        self.static_file.changed.connect(self._load_static_file)
        napari_viewer.layers.events.inserted.connect(self._layer_inserted)
        napari_viewer.layers.events.removed.connect(self._layer_removed)
        self.setup.events.videos.connect(self._choices_changed)
        napari_viewer.dims.events.current_step.connect(self._schedule_preview)
        for layer in list(napari_viewer.layers):
            self._watch(layer)
        if initial.static_mask and self.static_layer() is None:
            self._restore_static(initial.static_mask)
        self._video_changed()

    # -- choices and layers ----------------------------------------------------------------

    def _video_choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in training_videos(self.viewer)]

    def _choices_changed(self, _event=None) -> None:
        if self._closed:
            return
        self.reset_choices()

    def _closing(self) -> None:
        """The Qt widget is gone (dock closed): its preview layers go, events are ignored.

        The static mask layer stays: it is the user's painting (and saved beside the video).
        """
        self._closed = True
        if self.task is not None and self.task.running:
            self.task.cancel()
        for name in (PREVIEW_LAYER, BACKGROUND_LAYER):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)

    def _layer_inserted(self, event) -> None:
        if self._closed:
            return
        self._watch(event.value)
        self.reset_choices()

    def _layer_removed(self, event) -> None:
        if self._closed:
            return
        self.reset_choices()
        if event.value.name == STATIC_LAYER:
            self._settings_changed()

    def _watch(self, layer) -> None:
        """Follow the painting on the static mask layer (connecting twice is harmless)."""
        if layer.name == STATIC_LAYER and isinstance(layer, Labels):
            layer.events.paint.connect(self._settings_changed)
            layer.events.data.connect(self._settings_changed)
            layer.events.set_data.connect(self._static_redrawn_later)  # undo, redo

    def static_layer(self) -> Labels | None:
        """The Labels layer the static mask is painted on, if any."""
        layers = self.viewer.layers
        if STATIC_LAYER in layers and isinstance(layers[STATIC_LAYER], Labels):
            return layers[STATIC_LAYER]
        return None

    # -- settings --------------------------------------------------------------------------

    def mask_settings(self) -> MaskSettings:
        """The settings shown, whether or not *Use masks* is on.

        Raises
        ------
        ConfigError
            For ranges no mask can use (a low limit above the high one ...).
        """
        return MaskSettings(
            method=self.method.value,
            use=self.use.value,
            hue=(self.hue_low.value, self.hue_high.value),
            saturation=(self.saturation_low.value, self.saturation_high.value),
            value=(self.value_low.value, self.value_high.value),
            change=self.change.value,
            shadow_ratio=(self.ratio_low.value, self.ratio_high.value),
            shadow_chroma=self.chroma.value,
            cleanup_px=self.cleanup.value,
            static_mask=self._static_path,
            animal_prior=self.animal_prior.value,
        )

    def settings(self) -> MaskSettings | None:
        """What training uses: the settings shown, or None with *Use masks* off.

        Raises
        ------
        ConfigError
            For ranges no mask can use.
        """
        return self.mask_settings() if self.use_masks.value else None

    def _settings_changed(self, _event=None) -> None:
        """Save a painted static mask, hand the settings to training, refresh the preview."""
        if self._closed:
            return
        self.colour_controls.visible = self.method.value == "colour"
        self.background_controls.visible = self.method.value == "background"
        self._static_path = self._sync_static_mask()
        try:
            self.setup.masks = self.settings()
        except ConfigError as exc:
            self.status.value = str(exc)
            self._warn_once(f"{exc} Training keeps the last valid mask settings.")
            return
        self.status.value = self._describe()
        self._schedule_preview()

    def _describe(self) -> str:
        if not self.use_masks.value:
            return "masks off: training sees the frames unmasked"
        static = f"; static mask {Path(self._static_path).name}" if self._static_path else ""
        return f"training masks: {self.method.value}, ignored pixels: {self.use.value}{static}"

    def _warn_once(self, message: str) -> None:
        if message != self._shown_warning:
            self._shown_warning = message
            show_warning(message)

    # -- static mask -----------------------------------------------------------------------

    def _sync_static_mask(self) -> str | None:
        """Save the painted static mask beside the video; its path, or None if none is painted."""
        layer = self.static_layer()
        video = self.video.value
        if layer is None or video is None:
            return None
        size = frame_size(video)
        mask = np.asarray(layer.data) != 0
        if mask.shape != size:
            self._warn_once(
                f"The static mask layer is {mask.shape[-1]}x{mask.shape[0]} px but {video.name} "
                f"is {size[1]}x{size[0]} px, so it is not used. Delete the layer "
                f"'{STATIC_LAYER}' and press 'Paint static mask' to draw one on this video."
            )
            return None
        if not mask.any():
            self._saved = None
            return None
        path = static_mask_path(video.metadata[SOURCE_KEY])
        saved = self._saved
        if saved is None or saved[0] != str(path) or not np.array_equal(saved[1], mask):
            try:
                save_mask(mask, path)
            except OSError as exc:
                show_exception("Saving the static mask", exc)
                return None
            self._saved = (str(path), mask)
        return str(path)

    def _static_redrawn_later(self, _event=None) -> None:
        if self._closed:
            return
        self._static_timer.start()

    def _static_redrawn(self) -> None:
        """After undo or redo on the static layer: update if the mask differs from the saved."""
        if self._closed:
            return
        layer = self.static_layer()
        if layer is None or self._saved is None:
            if layer is not None and np.any(layer.data):
                self._settings_changed()
            return
        if not np.array_equal(self._saved[1], np.asarray(layer.data) != 0):
            self._settings_changed()

    def _set_static(self, data: np.ndarray) -> Labels:
        layer = self.static_layer()
        if layer is None:
            layer = self.viewer.add_labels(data, name=STATIC_LAYER, opacity=0.6)
            self._watch(layer)
            self._settings_changed()
        else:
            layer.data = data  # emits `data`: saved and used
        return layer

    def paint_static_mask(self) -> Labels | None:
        """Add (or select) the Labels layer of the video's frame size to paint the mask on.

        A mask saved earlier beside the video is loaded into it.
        """
        video = self.video.value
        if video is None:
            show_error("No video: open a video (File > Open) to paint its static mask.")
            return None
        size = frame_size(video)
        layer = self.static_layer()
        if layer is None or layer.data.shape != size:
            data = np.zeros(size, np.uint8)
            saved = static_mask_path(video.metadata[SOURCE_KEY])
            if saved.exists():
                try:
                    data = load_static_mask(saved, size).astype(np.uint8)
                except MaskError as exc:
                    show_warning(f"{exc} Starting an empty static mask.")
            layer = self._set_static(data)
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        show_info(f"Paint the pixels to ignore on every frame on '{STATIC_LAYER}'.")
        return layer

    def _load_static_file(self) -> None:
        path = self.static_file.value
        if path is not None and Path(path).is_file():
            self._restore_static(path)

    def _restore_static(self, path: str | Path) -> None:
        """Load a mask file into the static mask layer; a wrong size is reported."""
        video = self.video.value
        if video is None:
            return
        try:
            mask = load_static_mask(path, frame_size(video))
        except MaskError as exc:
            show_error(str(exc))
            return
        self._set_static(mask.astype(np.uint8))

    # -- background ------------------------------------------------------------------------

    def build_background(self) -> None:
        """Build the chosen video's background model in a worker; it is shown as a layer.

        While it runs, the button cancels it.
        """
        if self.task is not None and self.task.running:
            self.background_info.value = "background: cancelling..."
            self.task.cancel()
            return
        video = self.video.value
        if video is None:
            show_error("No video: open a video (File > Open) to build its background.")
            return
        self._auto_built.add(video.metadata[SOURCE_KEY])
        self.background_info.value = "background: sampling frames..."
        self.task = Task(
            _build_background,
            video.metadata[SOURCE_KEY],
            self.setup.crop_size,
            self.change.value,
            desc="Building the background",
            on_return=self._background_built,
            on_finish=self._background_finished,
        )
        self.task.start()
        self.build_button.text = "Cancel building"

    def _background_built(self, built: tuple) -> None:
        if self._closed:
            return
        path, background, messages = built
        self.backgrounds[path] = background
        for message in messages:
            show_warning(message)
        video = self.video.value
        if video is not None and video.metadata[SOURCE_KEY] == path:
            self._show_background(video, background)

    def _show_background(self, video: Image, built: VideoBackground) -> None:
        """The background model as an Image layer just above its video, and its numbers."""
        background = built.background
        height, width = built.letterbox.resized_size
        self.background_info.value = (
            f"background: median of {background.n_samples} frames at {width}x{height} px "
            f"(as training sees them); {background.moving_fraction:.1%} of a frame moves"
        )
        layers = self.viewer.layers
        scale, translate = built.layer_scale
        if BACKGROUND_LAYER in layers:
            layers[BACKGROUND_LAYER].data = background.image
            layers[BACKGROUND_LAYER].scale, layers[BACKGROUND_LAYER].translate = scale, translate
        else:
            layer = Image(
                background.image,
                name=BACKGROUND_LAYER,
                rgb=True,
                scale=scale,
                translate=translate,
            )
            index = layers.index(video) + 1 if video in layers else len(layers)
            insert_unselected(self.viewer, layer, index)

    def _background_finished(self) -> None:
        if self._closed:
            return
        self.build_button.text = "Build background"
        if self.video.value is not None and self._source() not in self.backgrounds:
            self.background_info.value = "background: not built"
        self._schedule_preview()

    def _source(self) -> str | None:
        video = self.video.value
        return None if video is None else video.metadata[SOURCE_KEY]

    # -- preview ---------------------------------------------------------------------------

    def _video_changed(self, _event=None) -> None:
        background = self.backgrounds.get(self._source() or "")
        if background is not None:
            self._show_background(self.video.value, background)
        else:
            self.background_info.value = "background: not built"
        self._settings_changed()

    def _preview_changed(self) -> None:
        if self.preview.value:
            self._schedule_preview()
            return
        self.fractions.value = ""
        if PREVIEW_LAYER in self.viewer.layers:
            self.viewer.layers.remove(PREVIEW_LAYER)

    def _schedule_preview(self, _event=None) -> None:
        if self._closed:
            return
        if self.preview.value:
            self._preview_timer.start()

    @property
    def idle(self) -> bool:
        """Whether no preview or background work is waiting or running."""
        return not (
            self._preview_busy
            or self._preview_pending
            or self._preview_timer.isActive()
            or (self.task is not None and self.task.running)
        )

    def _request_preview(self) -> None:
        """Label the frame shown in a worker (one at a time, the latest request wins).

        The background method needs the video's background model: it is built first.
        """
        if self._closed:
            return
        video = self.video.value
        if not self.preview.value or video is None:
            return
        if self._preview_busy or (self.task is not None and self.task.running):
            self._preview_pending = True  # shown once the running one (or the build) ends
            return
        try:
            settings = self.mask_settings()
        except ConfigError:
            return  # reported by _settings_changed
        built = self.backgrounds.get(video.metadata[SOURCE_KEY])
        if built is None:
            if video.metadata[SOURCE_KEY] not in self._auto_built:  # once, not on failure
                self.build_background()
            else:
                self.fractions.value = "preview: press 'Build background' first"
            return
        size = built.letterbox.resized_size
        layer = self.static_layer()
        static = None
        if layer is not None and layer.data.shape == frame_size(video):
            static = resize_mask(np.asarray(layer.data) != 0, size)
        masker = FrameMasker(settings, built.background.image, static)
        t = min(current_frame(self.viewer), video.data.shape[0] - 1)
        self._preview_busy = True
        self._preview_pending = False
        worker = create_worker(
            _frame_labels,
            video.data,
            t,
            masker,
            size,
            _start_thread=False,
            _connect={"errored": lambda exc: show_exception("Mask preview", exc)},
        )
        worker.returned.connect(lambda shown: self._show_preview(shown, settings, built))
        worker.finished.connect(self._preview_done)
        worker.start()

    def _preview_done(self) -> None:
        self._preview_busy = False
        if self._preview_pending:
            self._preview_pending = False
            self._request_preview()

    def _show_preview(
        self, shown: tuple[int, np.ndarray], settings: MaskSettings, built: VideoBackground
    ) -> None:
        if self._closed:
            return
        if not self.preview.value:
            return
        t, labels = shown
        layers = self.viewer.layers
        scale, translate = built.layer_scale  # labels at model scale, over the video
        if PREVIEW_LAYER in layers:
            layers[PREVIEW_LAYER].data = labels
            layers[PREVIEW_LAYER].scale, layers[PREVIEW_LAYER].translate = scale, translate
        else:
            preview = Labels(
                labels,
                name=PREVIEW_LAYER,
                opacity=0.5,
                colormap=DirectLabelColormap(color_dict=PREVIEW_COLOURS),
                scale=scale,
                translate=translate,
            )
            insert_unselected(self.viewer, preview)
        share = {label: float(np.mean(labels == label)) for label in (ANIMAL, SHADOW, STATIC)}
        self.fractions.value = (
            f"frame {t}: animal {share[ANIMAL]:.1%}, shadow {share[SHADOW]:.1%}, "
            f"static {share[STATIC]:.1%}"
        )
        self._check_selection(labels, settings)

    def _check_selection(self, labels: np.ndarray, settings: MaskSettings) -> None:
        """Warn (once per settings) when the mask selects nothing or everything."""
        key = (self._source(), settings)
        if key == self._selection_checked:
            return
        self._selection_checked = key
        if settings.method == "colour":
            problem = selection_problem(
                labels == ANIMAL,
                "The colour range",
                widen="widen the hue, saturation and value ranges (or move them to the "
                "animal's colour) until the preview covers the animal.",
                narrow="narrow the hue, saturation and value ranges until the preview covers "
                "the animal and little of the floor.",
            )
        else:
            problem = selection_problem(
                (labels == ANIMAL) | (labels == SHADOW),
                "The change threshold",
                widen="lower the change threshold, or use a video where the animal moves "
                "around (or the colour method).",
                narrow="raise the change threshold, or rebuild the background (did the camera "
                "or the lighting change?).",
            )
        if problem:
            show_warning(problem)
