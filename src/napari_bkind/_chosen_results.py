"""The keypoints a dock widget works on: an open results layer, or a results file."""

from __future__ import annotations

from pathlib import Path

import napari
from magicgui.widgets import ComboBox, FileEdit
from napari.layers import Points

from bkind_model.errors import BKindError
from bkind_model.io.results import KeypointResult
from napari_bkind._layers import PATH_KEY


def results_layers(viewer: napari.Viewer) -> list[tuple[str, Points]]:
    """``(name, layer)`` of the open keypoint layers read from a results file."""
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if isinstance(layer, Points) and layer.metadata.get(PATH_KEY)
    ]


class ChosenResults:
    """The *Keypoints* choice of a widget (an open results layer, else a file) and its keypoints.

    A widget places :attr:`layer` and :attr:`edit` in its form.

    The open results layers are offered first; the first one opened is chosen while
    nothing else is. Choosing a layer clears the file and choosing a file clears the
    layer, so the last choice counts. The keypoints are read from the layer's results file.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose results layers are offered.
    tooltip : str
        What the keypoints should be.
    missing : type of BKindError
        The error raised (with a message saying what to choose) when none is chosen.
    """

    def __init__(self, viewer: napari.Viewer, tooltip: str, missing: type[BKindError]) -> None:
        self.viewer = viewer
        self.layer = ComboBox(
            label="Keypoints",
            choices=lambda _widget: results_layers(self.viewer),
            nullable=True,
            value=None,
            tooltip=f"{tooltip}: an open results layer (File > Open a .bkind.h5)",
        )
        self.edit = FileEdit(
            label="or file", mode="r", filter="*.h5", nullable=True, value=None, tooltip=tooltip
        )
        self.result: KeypointResult | None = None
        self._missing = missing
        self.layer.changed.connect(self._layer_chosen)
        self.edit.changed.connect(self._file_chosen)
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)
        self._layers_changed()

    def _layers_changed(self, _event=None) -> None:
        self.layer.reset_choices()
        layers = [layer for layer in self.layer.choices if layer is not None]
        if self.layer.value is None and self.edit.value is None and layers:
            self.layer.value = layers[0]

    def _layer_chosen(self) -> None:
        if self.layer.value is not None and self.edit.value is not None:
            with self.edit.changed.blocked():
                self.edit.value = None
        self.forget()

    def _file_chosen(self) -> None:
        if self.edit.value is not None and self.layer.value is not None:
            with self.layer.changed.blocked():
                self.layer.value = None
        self.forget()

    @property
    def path(self) -> Path | None:
        """The chosen results file: the chosen layer's, else the file chosen; None if neither."""
        if self.layer.value is not None:
            return Path(self.layer.value.metadata[PATH_KEY])
        return Path(self.edit.value) if self.edit.value else None

    def forget(self) -> None:
        """Drop the loaded keypoints (another layer or file was chosen)."""
        self.result = None

    def load(self) -> KeypointResult:
        """The chosen keypoints, read once."""
        if self.result is None:
            path = self.path
            if path is None:
                raise self._missing(
                    "no keypoints: open the video's results (.bkind.h5) or choose the file "
                    "in 'Keypoints'."
                )
            self.result = KeypointResult.load(path)
        return self.result
