"""Dock widget *Discover*: run a trained checkpoint over a video and show the keypoints.

Extraction runs in a worker with a progress bar; *Cancel* stops it between batches
(the partial file stays hidden beside the target and a later run continues it). The
finished results file opens as keypoint, trajectory and (optionally) heatmap layers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import napari
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error, show_info

from bkind_model.infer.extraction import extract
from bkind_model.io.results import KeypointResult
from napari_bkind._layers import result_layers
from napari_bkind._session import (
    SOURCE_KEY,
    beside_video,
    replace_layer,
    training_setup,
    video_layers,
)
from napari_bkind._tasks import Task


def _extract(
    task: Task, checkpoint: str, video: str, out: Path, heatmaps: bool
) -> tuple[Path, KeypointResult]:
    """Extract with progress reports; returns the results file and its contents."""
    with contextlib.closing(extract(checkpoint, video, out, heatmaps=heatmaps)) as steps:
        for step in steps:
            task.report(step.frames_done, step.n_frames)
            if step.path is not None:
                return step.path, KeypointResult.load(step.path)
    raise RuntimeError("extraction ended without a results file")  # pragma: no cover


class DiscoverWidget(Container):
    """Checkpoint + video -> results file -> keypoint layers.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the video layers.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.setup = training_setup(napari_viewer)
        self.checkpoint = FileEdit(
            label="Checkpoint",
            mode="r",
            filter="*.pt",
            nullable=True,
            value=self.setup.checkpoint,
            tooltip="checkpoint.pt of a run (filled in when the Train widget saves one)",
        )
        self.video = ComboBox(label="Video", choices=self._video_choices)
        self.output = FileEdit(
            label="Results file",
            mode="w",
            filter="*.h5",
            nullable=True,
            value=None,
            tooltip="Default: <video>.bkind.h5 beside the video",
        )
        self.heatmaps = CheckBox(text="Store heatmaps (to display them)", value=True)
        self.run_button = PushButton(text="Discover keypoints")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        super().__init__(
            widgets=[
                self.checkpoint,
                self.video,
                self.output,
                self.heatmaps,
                Container(
                    widgets=[self.run_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
            ]
        )
        self.task: Task | None = None
        self.setup.events.checkpoint.connect(self._new_checkpoint)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        napari_viewer.layers.events.inserted.connect(self.reset_choices)
        napari_viewer.layers.events.removed.connect(self.reset_choices)

    def _video_choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in video_layers(self.viewer)]

    def _new_checkpoint(self, path: str | None) -> None:
        if path:
            self.checkpoint.value = path

    def run(self) -> None:
        """Start extraction in a worker; returns at once."""
        if self.task is not None and self.task.running:
            show_info("Keypoint discovery is already running.")
            return
        video = self.video.value
        checkpoint = self.checkpoint.value
        if video is None:
            show_error("No video: open the video to process (File > Open) and choose it.")
            return
        if checkpoint is None or not Path(checkpoint).is_file():
            show_error("No checkpoint: train first, or choose a checkpoint.pt file.")
            return
        source = video.metadata[SOURCE_KEY]
        out = Path(self.output.value or beside_video(source, f"{Path(source).stem}.bkind.h5"))
        self.task = Task(
            _extract,
            str(checkpoint),
            source,
            out,
            self.heatmaps.value,
            desc="Discovering keypoints",
            on_return=self._show,
            on_finish=lambda: self._set_running(False),
        )
        self.task.start()
        self._set_running(True)

    def cancel(self) -> None:
        """Stop after the current batch; a later run continues from there."""
        if self.task is not None and self.task.running:
            self.task.cancel()

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    def _show(self, done: tuple[Path, KeypointResult]) -> None:
        path, result = done
        for layer_data in result_layers(result, path):
            replace_layer(self.viewer, layer_data)
        show_info(f"Keypoints of {result.n_frames} frames written to {path}.")
