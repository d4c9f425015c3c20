"""Dock widget *Keypoints*: how discovered keypoints are shown, and the overlay export.

For a keypoint layer: the likelihood below which points are drawn as rings, keypoint
names as text, the trail length of the trajectories, covariance ellipses on the
current frame, and the overlay video: keypoints, skeleton (a named layer's own, or typed),
trails and names drawn over a frame range, written to mp4 in a worker (progress, cancel).
The display settings above it (ring threshold, names, trail) apply to the video too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    LineEdit,
    PushButton,
)
from magicgui.widgets import SpinBox as IntSpinBox
from napari.layers import Points, Tracks
from napari.layers.utils.string_encoding import ConstantStringEncoding
from napari.utils.notifications import show_error, show_info

from bkind_model.io.overlay import write_overlay_video
from bkind_model.io.results import KeypointResult
from napari_bkind._layers import (
    GROUP_KEY,
    LIKELIHOOD_CUTOFF,
    PATH_KEY,
    RESULT_KEY,
    THRESHOLD_KEY,
    KeypointLayerError,
    covariance_ellipses,
    frame_points,
    is_keypoint_layer,
    likelihood_symbols,
    points_to_result,
)
from napari_bkind._palette import rgba
from napari_bkind._reader import find_video
from napari_bkind._session import beside_video, current_frame
from napari_bkind._tasks import Task, show_exception

ELLIPSE_LAYER = "keypoint covariance ellipses"


def _overlay(
    task: Task, result: KeypointResult, path: Path, video: Path, options: dict[str, Any]
) -> Path:
    return write_overlay_video(result, path, video=video, progress=task.report, **options)


class KeypointsWidget(Container):
    """Display settings of a keypoint layer and its overlay-video export.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the keypoint layers.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.layer = ComboBox(label="Keypoints", choices=self._layer_choices)
        self.threshold = FloatSlider(
            label="Rings below likelihood",
            min=0.0,
            max=1.0,
            value=LIKELIHOOD_CUTOFF,
            tracking=False,
            tooltip="Points less likely than this to be stable on the body are drawn as "
            "rings here and hollow in the overlay video (0.6: DeepLabCut's usual cut-off)",
        )
        self.names = CheckBox(text="Show keypoint names", value=False)
        self.trail = IntSpinBox(label="Trail (frames)", value=10, min=0, max=10_000)
        self.ellipses = CheckBox(text="Covariance ellipses (current frame)", value=False)
        self.skeleton = LineEdit(
            label="Skeleton",
            tooltip="Edges drawn in the overlay video, e.g. nose-neck, neck-tail or 0-1, 1-2 "
            "(filled in from named bodyparts; empty: none)",
        )
        self.start = IntSpinBox(label="Overlay from frame", value=0, min=0, max=10**9)
        self.stop = IntSpinBox(label="to frame (not included)", value=0, min=0, max=10**9)
        self.scale = FloatSpinBox(
            label="Overlay scale",
            value=1.0,
            min=0.05,
            max=1.0,
            step=0.05,
            tooltip="Size of the overlay video as a fraction of the video's (for big videos)",
        )
        self.overlay = FileEdit(
            label="Overlay video",
            mode="w",
            filter="*.mp4",
            nullable=True,
            tooltip="Default: <video>.overlay.mp4 beside the video",
        )
        self.replace = CheckBox(text="Replace an existing file", value=False)
        self.export_button = PushButton(text="Export overlay video")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        super().__init__(
            widgets=[
                self.layer,
                self.threshold,
                self.names,
                self.trail,
                self.ellipses,
                self.skeleton,
                self.start,
                self.stop,
                self.scale,
                self.overlay,
                self.replace,
                Container(
                    widgets=[self.export_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
            ]
        )
        self.task: Task | None = None
        self.layer.changed.connect(self._layer_changed)
        self.threshold.changed.connect(self._recolor)
        self.names.changed.connect(self._show_names)
        self.trail.changed.connect(self._set_trail)
        self.ellipses.changed.connect(self._draw_ellipses)
        self.export_button.changed.connect(self.export)
        self.cancel_button.changed.connect(self.cancel)
        napari_viewer.dims.events.current_step.connect(self._frame_changed)
        napari_viewer.layers.events.inserted.connect(self.reset_choices)
        napari_viewer.layers.events.removed.connect(self.reset_choices)
        self._layer_changed()

    def _layer_choices(self, _widget=None) -> list[tuple[str, Points]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Points) and is_keypoint_layer(layer.metadata)
        ]

    def _group(self, kind: type) -> list:
        """Layers of ``kind`` made from the same result as the chosen keypoints."""
        group = self.layer.value.metadata.get(GROUP_KEY) if self.layer.value else None
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, kind) and group and layer.metadata.get(GROUP_KEY) == group
        ]

    # -- reactions -------------------------------------------------------------------------

    def _layer_changed(self) -> None:
        layer = self.layer.value
        if layer is None:
            return
        with self.threshold.changed.blocked():
            self.threshold.value = layer.metadata.get(THRESHOLD_KEY, LIKELIHOOD_CUTOFF)
        tracks = self._group(Tracks)
        if tracks:
            with self.trail.changed.blocked():
                self.trail.value = tracks[0].tail_length
        stored = layer.metadata[RESULT_KEY]
        edges = stored.get("skeleton") or []
        self.skeleton.value = ", ".join(f"{a}-{b}" for a, b in edges)
        frames = layer.data[:, 0]
        self.start.value = 0
        self.stop.value = int(stored.get("n_frames") or (frames.max() + 1 if len(frames) else 0))
        self._draw_ellipses()

    def _recolor(self) -> None:
        layer = self.layer.value
        if layer is None:
            return
        layer.symbol = likelihood_symbols(
            layer.features["likelihood"].to_numpy(), self.threshold.value
        )
        layer.metadata[THRESHOLD_KEY] = self.threshold.value

    def _show_names(self) -> None:
        layer = self.layer.value
        if layer is None:
            return
        if self.names.value and isinstance(layer.text.string, ConstantStringEncoding):
            layer.text = {"string": "{keypoint}", "color": "white", "size": 9}
        layer.text.visible = self.names.value

    def _set_trail(self) -> None:
        for tracks in self._group(Tracks):
            tracks.tail_length = self.trail.value

    def _frame_changed(self, _event=None) -> None:
        """Redraw the ellipses for the new frame, unless their layer was removed."""
        if ELLIPSE_LAYER in self.viewer.layers:
            self._draw_ellipses()

    def _draw_ellipses(self) -> None:
        layer = self.layer.value
        shown = self.ellipses.value and layer is not None and layer in self.viewer.layers
        layers = self.viewer.layers
        if not shown:
            if ELLIPSE_LAYER in layers:
                layers.remove(ELLIPSE_LAYER)
            return
        yx, ids, covariance = frame_points(layer.data, layer.features, current_frame(self.viewer))
        keep = np.isfinite(covariance).all(axis=(1, 2))
        ellipses = covariance_ellipses(yx, covariance)
        colors = rgba(len(layer.features["keypoint"].cat.categories))[ids[keep]]
        if ELLIPSE_LAYER not in layers:
            self.viewer.add_shapes(name=ELLIPSE_LAYER, face_color="transparent", edge_width=1.5)
        shapes = layers[ELLIPSE_LAYER]
        shapes.data = [(corners, "ellipse") for corners in ellipses]
        if len(ellipses):
            shapes.edge_color = colors

    # -- export ----------------------------------------------------------------------------

    def export(self) -> None:
        """Write the overlay video of the chosen keypoints in a worker; returns at once."""
        layer = self.layer.value
        if layer is None:
            show_error("No keypoint layer: discover keypoints or open a results file first.")
            return
        if self.task is not None and self.task.running:
            show_info("An overlay video is already being written.")
            return
        try:
            result = points_to_result(
                layer.data, {"features": layer.features, "metadata": layer.metadata}
            )
        except KeypointLayerError as exc:
            show_exception("Overlay export", exc)
            return
        recorded = layer.metadata[RESULT_KEY].get("video_path")
        video = find_video(layer.metadata.get(PATH_KEY) or recorded or "", recorded)
        if video is None:
            show_error(
                f"The video of {layer.name} ({recorded}) was not found; an overlay needs it."
            )
            return
        path = Path(self.overlay.value or beside_video(video, f"{video.stem}.overlay.mp4"))
        options = {
            "trail": self.trail.value,
            "skeleton": self.skeleton.value,
            "names": self.names.value,
            "min_likelihood": self.threshold.value,
            "start": self.start.value,
            "stop": self.stop.value,
            "scale": self.scale.value,
            "overwrite": self.replace.value,
        }
        self.task = Task(
            _overlay,
            result,
            path,
            video,
            options,
            desc="Writing the overlay video",
            on_return=lambda written: show_info(f"Overlay video written to {written}."),
            on_finish=lambda: self._set_running(False),
        )
        self.task.start()
        self._set_running(True)

    def cancel(self) -> None:
        """Stop writing the overlay video; no partial file is left."""
        if self.task is not None and self.task.running:
            self.task.cancel()

    def _set_running(self, running: bool) -> None:
        self.export_button.enabled = not running
        self.cancel_button.enabled = running
