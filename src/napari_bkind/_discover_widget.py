"""Dock widget *Discover*: run a trained checkpoint over videos and show the keypoints.

Extraction runs in a worker with a progress bar in napari's activity dock; *Cancel*
stops it. One video is extracted in one sequential pass (the partial file stays hidden
beside the target and a later run continues it). With *All open videos* ticked, every
open video layer is extracted at once on a small local dask cluster
(:func:`~bkind_model.infer.cluster.extract_many`, needs the ``cluster`` extra): one task
per chunk of frames, finished chunks kept for a resumed run. The finished results files
open as keypoint, trajectory and (optionally, one video only) heatmap layers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import napari
from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error, show_info

from bkind_model.config import TASK_FRAMES
from bkind_model.infer.cluster import extract_many
from bkind_model.infer.extraction import ExtractionProgress, extract
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

_OUTPUT_TIP = "Default: <video>.bkind.h5 beside the video"
_OUTPUT_TIP_ALL = "Not used for all open videos: each gets <video>.bkind.h5 beside it"
_HEATMAPS_TIP = "Heatmaps make the results file larger; they are shown as an image layer"
_HEATMAPS_TIP_ALL = "Not stored for all open videos: the dask cluster extraction keeps none"
_ALL_TIP = (
    "Extract every open video layer at once on a local dask cluster (one worker per video, "
    "at most one per CPU core; needs pip install 'napari-bkind[cluster]'). Results go "
    "beside each video as <video>.bkind.h5, without heatmaps; finished chunks of frames "
    "are kept after Cancel, and a later run continues from them."
)


def _extract(
    task: Task, checkpoint: str, video: str, out: Path, heatmaps: bool
) -> tuple[Path, KeypointResult]:
    """Extract with progress reports; returns the results file and its contents."""
    steps = cast(
        Generator[ExtractionProgress, None, None],
        extract(checkpoint, video, out, heatmaps=heatmaps),
    )
    with contextlib.closing(steps):
        for step in steps:
            task.report(step.frames_done, step.n_frames)
            if step.path is not None:
                return step.path, KeypointResult.load(step.path)
    raise RuntimeError("extraction ended without a results file")  # pragma: no cover


def _extract_all(
    task: Task,
    checkpoint: str,
    videos: list[str],
    outs: list[Path],
    workers: int,
    chunk_frames: int,
) -> list[tuple[Path, KeypointResult]]:
    """Extract many videos on a local dask cluster; returns each results file and contents.

    Videos this checkpoint finished already are not run again (and, when all are, no
    cluster starts); those of another checkpoint are redone. Progress goes to
    :meth:`Task.report` as chunks finish; after *Cancel* the report raises, which stops
    ``extract_many`` and closes the cluster, keeping the finished chunks.
    """
    extract_many(
        checkpoint,
        videos,
        outs,
        workers=workers,
        chunk_frames=chunk_frames,
        progress=task.report,
    )
    return [(out, KeypointResult.load(out)) for out in outs]


def _beside(video: str) -> Path:
    """The default results file of ``video``: ``<stem>.bkind.h5`` beside it."""
    return beside_video(video, f"{Path(video).stem}.bkind.h5")


class DiscoverWidget(Container):
    """Checkpoint + video(s) -> results file(s) -> keypoint layers.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the video layers.

    Attributes
    ----------
    chunk_frames : int
        Frames of one dask task when all open videos are extracted.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.setup = training_setup(napari_viewer)
        self.chunk_frames: int = TASK_FRAMES
        self.checkpoint = FileEdit(
            label="Checkpoint",
            mode=FileDialogMode.EXISTING_FILE,
            filter="*.pt",
            nullable=True,
            value=Path(self.setup.checkpoint) if self.setup.checkpoint else None,
            tooltip="checkpoint.pt of a run (filled in when the Train widget saves one)",
        )
        self.video = ComboBox(label="Video", choices=self._video_choices)
        self.all_videos = CheckBox(
            text="All open videos (dask cluster)", value=False, tooltip=_ALL_TIP
        )
        self.output = FileEdit(
            label="Results file",
            mode=FileDialogMode.OPTIONAL_FILE,
            filter="*.h5",
            nullable=True,
            value=None,
            tooltip=_OUTPUT_TIP,
        )
        self.heatmaps = CheckBox(
            text="Store heatmaps (to display them)", value=True, tooltip=_HEATMAPS_TIP
        )
        self.run_button = PushButton(text="Discover keypoints")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        super().__init__(
            widgets=[
                self.checkpoint,
                self.video,
                self.all_videos,
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
        self.setup.events.checkpoint.connect(self._new_checkpoint)  # type: ignore[attr-defined]
        self.all_videos.changed.connect(self._all_videos_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        napari_viewer.layers.events.inserted.connect(self.reset_choices)
        napari_viewer.layers.events.removed.connect(self.reset_choices)

    def _video_choices(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in video_layers(self.viewer)]

    def _new_checkpoint(self, path: str | None) -> None:
        if path:
            self.checkpoint.value = Path(path)

    def _all_videos_changed(self, every: bool) -> None:
        """Grey out what applies to one video only: the chooser, results file, heatmaps."""
        self.video.enabled = not every
        self.output.enabled = not every
        self.output.tooltip = _OUTPUT_TIP_ALL if every else _OUTPUT_TIP
        self.heatmaps.enabled = not every
        self.heatmaps.tooltip = _HEATMAPS_TIP_ALL if every else _HEATMAPS_TIP

    def run(self) -> None:
        """Start extraction in a worker; returns at once."""
        if self.task is not None and self.task.running:
            show_info("Keypoint discovery is already running.")
            return
        if self.all_videos.value:
            self._run_all()
        else:
            self._run_one()

    def _checkpoint_file(self) -> str | None:
        """The chosen checkpoint file, else None after telling the user."""
        checkpoint = self.checkpoint.value
        if not isinstance(checkpoint, Path) or not checkpoint.is_file():
            show_error("No checkpoint: train first, or choose a checkpoint.pt file.")
            return None
        return str(checkpoint)

    def _run_one(self) -> None:
        """Extract the chosen video to the results file (default beside the video)."""
        video = self.video.value
        if video is None:
            show_error("No video: open the video to process (File > Open) and choose it.")
            return
        checkpoint = self._checkpoint_file()
        if checkpoint is None:
            return
        source = video.metadata[SOURCE_KEY]
        output = self.output.value
        out = output if isinstance(output, Path) else _beside(source)
        self._start(
            Task(
                _extract,
                checkpoint,
                source,
                out,
                self.heatmaps.value,
                desc="Discovering keypoints",
                on_return=self._show,
                on_finish=lambda: self._set_running(False),
            )
        )

    def _run_all(self) -> None:
        """Extract every open video on a local cluster, each to ``<stem>.bkind.h5`` beside it."""
        layers = video_layers(self.viewer)
        sources = list(dict.fromkeys(layer.metadata[SOURCE_KEY] for layer in layers))
        if not sources:
            show_error("No video: open the videos to process (File > Open).")
            return
        checkpoint = self._checkpoint_file()
        if checkpoint is None:
            return
        outs = [_beside(source) for source in sources]
        clashes = sorted({str(out) for out in outs if outs.count(out) > 1})
        if clashes:
            show_error(
                f"Videos with the same name would write the same results file {clashes[0]}: "
                "rename one, or extract them one at a time with a results file each."
            )
            return
        workers = min(len(sources), os.cpu_count() or 1)
        self._start(
            Task(
                _extract_all,
                checkpoint,
                sources,
                outs,
                workers,
                self.chunk_frames,
                desc=f"Discovering keypoints in {len(sources)} videos",
                on_return=self._show_all,
                on_finish=lambda: self._set_running(False),
            )
        )

    def _start(self, task: Task) -> None:
        self.task = task
        task.start()
        self._set_running(True)

    def cancel(self) -> None:
        """Stop soon (after the current batch or chunk); a later run continues from there."""
        if self.task is not None and self.task.running:
            self.task.cancel()

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    def _add_layers(self, path: Path, result: KeypointResult) -> None:
        for layer_data in result_layers(result, path):
            replace_layer(self.viewer, layer_data)

    def _show(self, done: tuple[Path, KeypointResult]) -> None:
        path, result = done
        self._add_layers(path, result)
        show_info(f"Keypoints of {result.n_frames} frames written to {path}.")

    def _show_all(self, done: list[tuple[Path, KeypointResult]]) -> None:
        for path, result in done:
            self._add_layers(path, result)
        frames = sum(result.n_frames for _, result in done)
        folders = {str(path.parent) for path, _ in done}
        where = f"in {folders.pop()}" if len(folders) == 1 else "beside each video"
        show_info(f"Keypoints of {len(done)} videos ({frames} frames) written {where}.")
