"""Dock widget *Video & frame gap*: choose training videos, set and see the frame gap.

The gap is pre-filled with the engine's suggestion (computed in a worker). With *Show*
on, two layers follow the current frame ``t``: frame ``t + gap`` (half transparent over
the video, so the animal's motion shows as a double image) and the structural
dissimilarity of the pair, the signal the model learns to reconstruct.
"""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, Select
from napari.layers import Image, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_warning

from bkind_model.config import Config
from bkind_model.frames.dissimilarity import structural_dissimilarity
from bkind_model.frames.gap import suggest_frame_gap
from bkind_model.frames.windows import to_tensor
from bkind_model.io.video import open_video
from napari_bkind._session import (
    SOURCE_KEY,
    current_frame,
    insert_unselected,
    training_setup,
    training_videos,
    video_layers,
)
from napari_bkind._tasks import Task, show_exception

NEXT_FRAME_LAYER = "frame t+gap"
DISSIMILARITY_LAYER = "dissimilarity t / t+gap"


def gap_in_frames(gap: float, unit: str, fps: float) -> int:
    """A gap in ``unit`` as whole frames, as the engine rounds it."""
    return Config(frame_gap=gap, gap_unit=unit).gap_frames(fps)


def _suggest(task: Task, source_path: str) -> tuple[str, int]:
    with open_video(source_path) as source:
        return source_path, suggest_frame_gap(source)


def _pair(frames, t: int, gap: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Frame ``t + gap`` and the dissimilarity of ``(t, t + gap)``, ``(H, W)`` in [0, 2]."""
    pair = np.stack([np.asarray(frames[t]), np.asarray(frames[t + gap])])
    tensors = to_tensor(pair)
    dissimilarity = structural_dissimilarity(tensors[:1], tensors[1:])[0, 0].numpy()
    return t, pair[1], dissimilarity


class FrameGapWidget(Container):
    """Choose training videos, see their size and frame rate, set and preview the gap.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose video layers are used.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.setup = training_setup(napari_viewer)
        self.videos = Select(
            label="Videos", choices=self._video_choices, tooltip="Videos to train on"
        )
        self.info = Label(value="Open a video (File > Open) to begin.")
        self.gap = FloatSpinBox(
            label="Frame gap",
            value=1.0,
            min=0.001,
            max=1e6,
            step=1.0,
            tooltip="Frames (whole numbers) or seconds between the two frames of a training pair",
        )
        self.gap.native.setDecimals(0)  # frames: whole numbers (seconds show milliseconds)
        self.unit = ComboBox(label="Gap unit", choices=["frames", "seconds"], value="frames")
        self.suggestion = Label(value="")
        self.preview = CheckBox(text="Show frame t+gap and dissimilarity", value=False)
        self.crop = ComboBox(
            label="Animal window",
            choices=self._shapes_choices,
            nullable=True,
            value=None,
            tooltip="Optional: a rectangle (Shapes layer) around the animal; its longer "
            "side sets the window that follows the animal in training (default: measured)",
        )
        self.crop_info = Label(value="window: measured from the video")
        super().__init__(
            widgets=[
                self.videos,
                self.info,
                self.gap,
                self.unit,
                self.suggestion,
                self.preview,
                self.crop,
                self.crop_info,
            ]
        )
        self._suggested: dict[str, int] = {}
        self._tasks: list[Task] = []
        self._preview_busy = False
        self._preview_pending = False
        self._unit_shown = "frames"
        self.videos.changed.connect(self._videos_changed)
        self.gap.changed.connect(self._gap_changed)
        self.unit.changed.connect(self._unit_changed)
        self.preview.changed.connect(self._preview_changed)
        self.crop.changed.connect(self._crop_changed)
        napari_viewer.layers.events.inserted.connect(self.reset_choices)
        napari_viewer.layers.events.removed.connect(self.reset_choices)
        napari_viewer.dims.events.current_step.connect(self._request_preview)
        self._videos_changed()

    # -- choices ---------------------------------------------------------------------------

    def _video_choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in video_layers(self.viewer)]

    def _shapes_choices(self, _widget=None) -> list[tuple[str, Shapes]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Shapes)]

    def reference(self) -> Image | None:
        """The video the gap is shown on: the first chosen one, else the first video."""
        videos = training_videos(self.viewer)
        return videos[0] if videos else None

    # -- reactions -------------------------------------------------------------------------

    def _videos_changed(self) -> None:
        self.setup.videos = tuple(self.videos.value)
        video = self.reference()
        if video is None:
            self.info.value = "Open a video (File > Open) to begin."
            return
        meta = video.metadata
        height, width = video.data.shape[1:3]
        self.info.value = (
            f"{width}x{height} px, {meta['n_frames']} frames, {meta['fps']:.2f} fps "
            f"({meta['n_frames'] / meta['fps']:.1f} s)"
        )
        path = meta[SOURCE_KEY]
        if path in self._suggested:
            self._show_suggestion(path, self._suggested[path])
        else:
            self.suggestion.value = "suggested gap: measuring motion..."
            task = Task(
                _suggest, path, desc="Suggesting a frame gap", on_return=self._suggested_gap
            )
            self._tasks.append(task.start())
        self._request_preview()

    def _suggested_gap(self, found: tuple[str, int]) -> None:
        path, gap = found
        self._suggested[path] = gap
        video = self.reference()
        if video is not None and video.metadata[SOURCE_KEY] == path:
            self._show_suggestion(path, gap)

    def _show_suggestion(self, path: str, gap: int) -> None:
        fps = self.reference().metadata["fps"]
        self.suggestion.value = f"suggested gap: {gap} frames ({gap / fps:.3g} s)"
        if self.setup.frame_gap is None:
            self.gap.value = gap if self.unit.value == "frames" else gap / fps

    def _gap_changed(self) -> None:
        self.setup.frame_gap = float(self.gap.value)
        self.setup.gap_unit = self.unit.value
        for video in training_videos(self.viewer):
            meta = video.metadata
            frames = gap_in_frames(self.gap.value, self.unit.value, meta["fps"])
            if frames >= meta["n_frames"]:
                show_warning(
                    f"{video.name}: a gap of {frames} frames is not shorter than the video "
                    f"({meta['n_frames']} frames); choose a smaller gap."
                )
        self._request_preview()

    def _unit_changed(self) -> None:
        """Show the gap in the new unit: whole frames, or seconds to the millisecond."""
        video = self.reference()
        frames = self.unit.value == "frames"
        value = self.gap.value
        if video is not None and self.unit.value != self._unit_shown:
            fps = video.metadata["fps"]
            value *= fps if frames else 1 / fps
        with self.gap.changed.blocked():
            self.gap.step = 1.0 if frames else 0.05
            self.gap.native.setDecimals(0 if frames else 3)
            self.gap.value = max(1.0, round(value)) if frames else value
        self._unit_shown = self.unit.value
        self._gap_changed()

    def _crop_changed(self) -> None:
        shapes = self.crop.value
        if shapes is None or len(shapes.data) == 0:
            self.setup.crop_size = None
            self.crop_info.value = "window: measured from the video"
            return
        corners = np.asarray(shapes.data[0])[:, -2:]
        self.setup.crop_size = float(np.ptp(corners, axis=0).max())
        self.crop_info.value = f"window: {self.setup.crop_size:.0f} px (from {shapes.name})"

    def _preview_changed(self) -> None:
        if self.preview.value:
            self._request_preview()
            return
        for name in (NEXT_FRAME_LAYER, DISSIMILARITY_LAYER):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)

    # -- preview ---------------------------------------------------------------------------

    def _request_preview(self, _event=None) -> None:
        """Recompute the preview for the current frame (one worker at a time, latest wins)."""
        if not self.preview.value:
            return
        if self._preview_busy:
            self._preview_pending = True
            return
        video = self.reference()
        if video is None:
            return
        t = current_frame(self.viewer)
        gap = gap_in_frames(self.gap.value, self.unit.value, video.metadata["fps"])
        if t + gap >= video.metadata["n_frames"]:
            self.suggestion.value = f"frame {t}+{gap} is past the end of the video"
            return
        self._preview_busy = True
        worker = create_worker(
            _pair,
            video.data,
            t,
            gap,
            _start_thread=False,
            _connect={"errored": lambda exc: show_exception("Frame gap preview", exc)},
        )
        worker.returned.connect(self._show_preview)
        worker.finished.connect(self._preview_done)
        worker.start()

    def _preview_done(self) -> None:
        self._preview_busy = False
        if self._preview_pending:
            self._preview_pending = False
            self._request_preview()

    def _show_preview(self, shown: tuple[int, np.ndarray, np.ndarray]) -> None:
        if not self.preview.value:
            return
        _, later, dissimilarity = shown
        layers = self.viewer.layers
        if NEXT_FRAME_LAYER in layers:
            layers[NEXT_FRAME_LAYER].data = later
        else:
            later_layer = Image(later, name=NEXT_FRAME_LAYER, rgb=True, opacity=0.5)
            insert_unselected(self.viewer, later_layer)
        if DISSIMILARITY_LAYER in layers:
            layers[DISSIMILARITY_LAYER].data = dissimilarity
        else:
            map_layer = Image(
                dissimilarity,
                name=DISSIMILARITY_LAYER,
                colormap="magma",
                blending="additive",
                contrast_limits=(0.0, 1.0),
            )
            insert_unselected(self.viewer, map_layer)
