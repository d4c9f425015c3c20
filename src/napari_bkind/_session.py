"""What the dock widgets of one viewer share: the video layers and the training setup."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import napari
import platformdirs
from napari.layers import Image, Layer
from psygnal import evented
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget

from bkind_model.config import GapUnit, MaskSettings
from napari_bkind._layers import LayerData
from napari_bkind._trajectories import follow_viewed_frames

SOURCE_KEY = "bkind_source"  # metadata key of video layers opened by our reader


@evented
@dataclass
class TrainingSetup:
    """Choices made in the *Video & frame gap* widget, used by *Train* and *Discover*.

    Attributes
    ----------
    videos : tuple of Image
        Video layers to train on; empty means every video layer of the viewer.
    frame_gap : float or None
        Gap between the frames of a training pair; None lets the engine suggest one.
    gap_unit : {"frames", "seconds"}
        Unit of ``frame_gap``.
    crop_size : float or None
        Side (video px) of the window that follows the animal; None measures it.
    checkpoint : str or None
        The last checkpoint written by the *Train* widget.
    masks : MaskSettings or None
        Shadow and static masks set in the *Shadows & masks* widget; None trains unmasked.
    """

    videos: tuple[Image, ...] = ()
    frame_gap: float | None = None
    gap_unit: GapUnit = "frames"
    crop_size: float | None = None
    checkpoint: str | None = None
    masks: MaskSettings | None = None


_SETUPS: weakref.WeakKeyDictionary[napari.Viewer, TrainingSetup] = weakref.WeakKeyDictionary()


def unproxied(viewer: napari.Viewer) -> napari.Viewer:
    """The viewer itself, not the proxy napari hands each dock widget.

    Each widget gets its own ``PublicOnlyProxy``; state shared by the widgets of one
    viewer is kept per viewer, so it must not be keyed on a proxy that dies with its widget.
    """
    return getattr(viewer, "__wrapped__", viewer)


def training_setup(viewer: napari.Viewer) -> TrainingSetup:
    """The setup shared by the widgets of ``viewer`` (created on first use)."""
    return _SETUPS.setdefault(unproxied(viewer), TrainingSetup())


def is_video(layer: Layer) -> bool:
    """Whether a layer is a video or image folder opened by this plugin's reader."""
    return isinstance(layer, Image) and SOURCE_KEY in layer.metadata


def video_layers(viewer: napari.Viewer) -> list[Image]:
    """The video layers of a viewer, in layer-list order."""
    return [layer for layer in viewer.layers if is_video(layer)]


def training_videos(viewer: napari.Viewer) -> list[Image]:
    """The videos chosen for training (still in the viewer), else every video layer."""
    chosen = [layer for layer in training_setup(viewer).videos if layer in viewer.layers]
    return chosen or video_layers(viewer)


def current_frame(viewer: napari.Viewer) -> int:
    """The frame shown: the viewer's position along the first (time) axis."""
    return max(0, round(viewer.dims.point[0])) if viewer.dims.ndim >= 3 else 0


def replace_layer(viewer: napari.Viewer, layer_data: LayerData) -> Layer:
    """Add a layer made from ``(data, kwargs, type)``, in place of one of the same name."""
    follow_viewed_frames(unproxied(viewer))
    data, kwargs, layer_type = layer_data
    layer = Layer.create(data, kwargs, layer_type)
    name = kwargs.get("name")
    if name in viewer.layers:
        index = viewer.layers.index(viewer.layers[name])
        viewer.layers.pop(index)
        viewer.layers.insert(index, layer)
    else:
        viewer.add_layer(layer)
    return layer


class _Undocked(QObject):
    """Calls back once when a docked widget loses its parent (its dock was closed)."""

    def __init__(self, widget: QWidget, callback: Callable[[], None]) -> None:
        super().__init__(widget)
        self._callback: Callable[[], None] | None = callback
        widget.installEventFilter(self)
        widget.destroyed.connect(self._call)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange and watched.parent() is None:
            self._call()
        return False

    def _call(self, _object=None) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()


def on_undocked(widget: QWidget, callback: Callable[[], None]) -> None:
    """Call ``callback`` once when ``widget``'s dock is closed (or the widget is deleted).

    napari takes a closed dock's widget out of the window (``setParent(None)``) without
    deleting it, so ``destroyed`` alone would come late or never.
    """
    _Undocked(widget, callback)


def insert_unselected(viewer: napari.Viewer, layer: Layer, index: int | None = None) -> None:
    """Add a preview layer at ``index`` (default: on top) leaving the layer selection as it was.

    napari selects a new layer; a widget's preview must not take the selection (and the
    keyboard shortcuts with it) from the layer the user works on.
    """
    selection = viewer.layers.selection
    selected, active = set(selection), selection.active
    viewer.layers.insert(len(viewer.layers) if index is None else index, layer)
    selection.clear()
    selection.update(selected)
    selection.active = active


def beside_video(video_path: str | Path, name: str) -> Path:
    """``name`` in the video's folder, or in the user's bkind data folder if that is read-only."""
    folder = Path(video_path).parent
    if not os.access(folder, os.W_OK):
        folder = Path(platformdirs.user_data_dir("bkind"))
        folder.mkdir(parents=True, exist_ok=True)
    return folder / name
