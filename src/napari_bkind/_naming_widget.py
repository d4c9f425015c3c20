"""Dock widget *Name bodyparts*: label a few frames, fit the map, predict, correct, refit.

The labelling works as in napari-deeplabcut: a Points layer whose points carry the
feature ``label`` (the bodypart) and ``id`` (the animal, empty for one), one bodypart at
a time. Each click in the layer's add mode places the current bodypart on the current
frame (replacing that bodypart's earlier point there) and moves on to the next bodypart.
The engine proposes the frames to label (diverse poses), fits the map
(:mod:`bkind_model.naming`) in a worker and the predictions come back as a Points layer
coloured by bodypart (feature ``keypoint``) with the skeleton as Vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, Container, FileEdit, Label, LineEdit, PushButton, SpinBox
from napari.layers import Points
from napari.utils.notifications import show_error, show_info

from bkind_model.io.labels import (
    Labels,
    labels_from_joints,
    load_labels,
    write_collected_data,
)
from bkind_model.io.results import KeypointResult
from bkind_model.naming.bodyparts import Bodyparts, BodypartsError
from bkind_model.naming.export import frames_to_refine, write_machinelabels
from bkind_model.naming.mapping import frame_rows, labelled_frames
from bkind_model.naming.proposal import propose_frames
from bkind_model.naming.run import Naming, default_named_path, name_results, save_naming
from napari_bkind._chosen_results import ChosenResults
from napari_bkind._palette import rgba
from napari_bkind._session import current_frame, replace_layer
from napari_bkind._tasks import Task, show_exception

LABELS_LAYER = "bodypart labels"
PREDICTIONS_LAYER = "named bodyparts"
SKELETON_LAYER = "named skeleton"

SHORTCUTS = (
    "Label proposed frames one bodypart at a time, as in napari-deeplabcut. Shortcuts:\n"
    "  .  next frame to label     ,  previous frame to label\n"
    "  n  next bodypart           b  previous bodypart\n"
    "Click (Points add mode, key 2) places the current bodypart and moves to the next;\n"
    "clicking a bodypart again on the same frame moves it."
)


def _colours(n: int) -> list[np.ndarray]:
    """One RGBA colour per bodypart from the plugin's palette."""
    return list(rgba(n))


def _propose(task: Task, result: KeypointResult, n: int, exclude: np.ndarray) -> np.ndarray:
    task.report(0, 1)
    frames = propose_frames(result, n, exclude=exclude)
    task.report(1, 1)
    return frames


def _fit(
    task: Task,
    result: KeypointResult,
    labels: Labels,
    bodyparts: Bodyparts,
    out: Path,
    overwrite: bool,
) -> Naming:
    task.report(0, 2, "fitting")
    naming = name_results(result, labels, bodyparts)
    task.report(1, 2, "saving")
    save_naming(naming, out, overwrite=overwrite)
    naming.named.path = out
    task.report(2, 2)
    return naming


def _export(
    task: Task, naming: Naming, folder: Path, n: int, overwrite: bool
) -> tuple[Path, Path]:
    task.report(0, 2, "machinelabels")
    frames = frames_to_refine(naming.named, n, exclude=naming.frames)
    machine = write_machinelabels(naming.named, folder, frames, overwrite=overwrite)
    task.report(1, 2, "CollectedData")
    collected, _ = write_collected_data(folder, naming.labels, "bkind", overwrite=overwrite)
    task.report(2, 2)
    return machine, collected


class NameBodypartsWidget(Container):
    """Bodyparts, labels, map, predictions and their export for napari-deeplabcut.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer showing the video whose discovered keypoints are named.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.chosen = ChosenResults(
            napari_viewer,
            "Discovered keypoints of the video (results .h5 of Discover keypoints)",
            BodypartsError,
        )
        self.results = self.chosen.edit
        self.names = LineEdit(label="Bodyparts", tooltip="Names, comma separated")
        self.skeleton = LineEdit(
            label="Skeleton", tooltip="Edges, e.g. snout-leftear, snout-rightear"
        )
        self.config = FileEdit(
            label="Load from",
            mode="r",
            filter="*.yaml *.yml *.json",
            nullable=True,
            value=None,
            tooltip="A DeepLabCut config.yaml (bodyparts, skeleton) or JSON",
        )
        self.n_propose = SpinBox(label="Frames to label", value=20, min=1, max=1000)
        self.propose_button = PushButton(text="Propose frames")
        self.dlc_labels = FileEdit(
            label="DLC labels",
            mode="r",
            filter="*.h5 *.csv",
            nullable=True,
            value=None,
            tooltip="A DeepLabCut CollectedData_<scorer>.h5/.csv of frames of this video",
        )
        self.import_button = PushButton(text="Import DLC labels")
        self.fit_button = PushButton(text="Fit and predict")
        self.correct_button = PushButton(text="Correct this frame", enabled=False)
        self.refit_button = PushButton(text="Refit", enabled=False)
        self.folder = FileEdit(
            label="Export to",
            mode="d",
            nullable=True,
            value=None,
            tooltip="labeled-data/<video stem> folder (default: beside the video)",
        )
        self.n_refine = SpinBox(label="Frames to refine", value=20, min=1, max=1000)
        self.replace = CheckBox(text="Replace existing files", value=False)
        self.export_button = PushButton(text="Export machinelabels", enabled=False)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        buttons = [self.propose_button, self.import_button, self.fit_button]
        super().__init__(
            widgets=[
                self.chosen.layer,
                self.chosen.edit,
                self.names,
                self.skeleton,
                self.config,
                self.n_propose,
                self.dlc_labels,
                Container(widgets=buttons, layout="horizontal", labels=False),
                Container(
                    widgets=[self.correct_button, self.refit_button],
                    layout="horizontal",
                    labels=False,
                ),
                self.folder,
                self.n_refine,
                self.replace,
                Container(
                    widgets=[self.export_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
                self.status,
            ]
        )
        self.native.setToolTip(SHORTCUTS)
        self.task: Task | None = None
        self.naming: Naming | None = None
        self.frames: list[int] = []  # frames to visit with . and ,
        self.current = 0  # index of the bodypart the next click places
        self._written: set[Path] = set()  # files this widget wrote (a refit replaces them)
        self.config.changed.connect(self._load_config)
        self.propose_button.changed.connect(self.propose)
        self.import_button.changed.connect(self.import_labels)
        self.fit_button.changed.connect(self.fit)
        self.refit_button.changed.connect(self.fit)
        self.correct_button.changed.connect(self.correct_frame)
        self.export_button.changed.connect(self.export)
        self.cancel_button.changed.connect(self.cancel)
        napari_viewer.bind_key(".", lambda _viewer: self.step_frame(1), overwrite=True)
        napari_viewer.bind_key(",", lambda _viewer: self.step_frame(-1), overwrite=True)

    # -- bodyparts -----------------------------------------------------------------------

    def bodyparts(self) -> Bodyparts:
        """The bodyparts and skeleton typed in the widget.

        Raises
        ------
        BodypartsError
            For an empty or inconsistent definition.
        """
        names = tuple(n.strip() for n in self.names.value.split(",") if n.strip())
        edges = []
        for item in self.skeleton.value.split(","):
            if item.strip():
                a, sep, b = item.partition("-")
                if not sep:
                    raise BodypartsError(f"skeleton edge {item.strip()!r}: write a-b.")
                edges.append((a.strip(), b.strip()))
        return Bodyparts(names, tuple(edges))

    def set_bodyparts(self, parts: Bodyparts) -> None:
        """Show ``parts`` in the editor and give the labels layer their colours."""
        self.names.value = ", ".join(parts.names)
        self.skeleton.value = ", ".join(f"{a}-{b}" for a, b in parts.skeleton)
        self.current = 0
        if LABELS_LAYER in self.viewer.layers:
            layer = self.viewer.layers[LABELS_LAYER]
            self._fill_labels(
                layer.data[:, 0], layer.data[:, [2, 1]], list(layer.features["label"])
            )

    def _load_config(self, path: Any) -> None:
        if not path:
            return
        try:
            self.set_bodyparts(Bodyparts.load(path))
        except BodypartsError as exc:
            show_exception("Loading bodyparts", exc)

    # -- the keypoints -------------------------------------------------------------------

    def keypoints(self) -> KeypointResult:
        """The discovered keypoints chosen (loaded once)."""
        return self.chosen.load()

    # -- the labels layer ----------------------------------------------------------------

    def labels_layer(self) -> Points:
        """The labelling layer (made empty for the current bodyparts if absent)."""
        if LABELS_LAYER not in self.viewer.layers:
            self._fill_labels(np.zeros(0), np.zeros((0, 2)), [])
        return self.viewer.layers[LABELS_LAYER]

    def _fill_labels(self, frames: np.ndarray, xy: np.ndarray, labels: list[str]) -> Points:
        parts = self.bodyparts()
        keep = [i for i, name in enumerate(labels) if name in parts.names]
        features = pd.DataFrame(
            {
                "label": pd.Categorical([labels[i] for i in keep], categories=list(parts.names)),
                "id": pd.Series([""] * len(keep), dtype=object),
            }
        )
        data = np.column_stack([np.asarray(frames)[keep], xy[keep, 1], xy[keep, 0]])
        layer = replace_layer(
            self.viewer,
            (
                data.reshape(-1, 3),
                {
                    "name": LABELS_LAYER,
                    "ndim": 3,
                    "features": features,
                    "face_color": "label",
                    "face_color_cycle": _colours(len(parts.names)),
                    "border_color": "white",
                    "size": self._point_size(),
                    "text": {"string": "{label}", "size": 8, "color": "white"},
                },
                "points",
            ),
        )
        layer.feature_defaults = {"label": parts.names[self.current % len(parts.names)], "id": ""}
        layer.events.data.connect(self._placed)
        layer.bind_key("n", lambda _layer: self.step_bodypart(1), overwrite=True)
        layer.bind_key("b", lambda _layer: self.step_bodypart(-1), overwrite=True)
        return layer

    def _point_size(self) -> float:
        size = (
            self.chosen.result.metadata.get("frame_size")
            if self.chosen.result is not None
            else None
        )
        return max(4.0, 0.015 * max(size)) if size else 6.0

    def _placed(self, event: Any) -> None:
        """A click placed a point: the current bodypart; its older point there goes.

        Then the next bodypart comes next. The label is set here rather than through the layer's feature defaults, which
        napari resets to the selected point's after every click.
        """
        if str(getattr(event, "action", "")) != "added":
            return
        layer = self.viewer.layers[LABELS_LAYER]
        names = self.bodyparts().names
        label = names[self.current % len(names)]
        new = len(layer.data) - 1
        features = layer.features.copy()
        features.loc[features.index[new], "label"] = label
        layer.features = features
        older = np.flatnonzero(
            (layer.data[:, 0] == layer.data[new, 0]) & (features["label"] == label).to_numpy()
        )
        older = older[older != new]
        if len(older):
            layer.selected_data = set(older.tolist())
            layer.remove_selected()
        layer.refresh_colors(update_color_mapping=False)
        self.step_bodypart(1)

    def step_bodypart(self, step: int) -> str:
        """Make the next (``step`` 1) or previous (-1) bodypart the one clicks place."""
        names = self.bodyparts().names
        self.current = (self.current + step) % len(names)
        if LABELS_LAYER in self.viewer.layers:
            layer = self.viewer.layers[LABELS_LAYER]
            layer.feature_defaults = {"label": names[self.current], "id": ""}
        self.status.value = f"Next click: {names[self.current]}"
        return names[self.current]

    def step_frame(self, step: int) -> int:
        """Go to the next (``step`` 1) or previous (-1) frame to label; returns it."""
        now = current_frame(self.viewer)
        targets = self.frames or list(range(self.keypoints().n_frames))
        later = [f for f in targets if (f > now if step > 0 else f < now)]
        frame = (min(later) if step > 0 else max(later)) if later else now
        self.viewer.dims.set_current_step(0, frame)
        self.current = 0
        self.step_bodypart(0)
        return frame

    def labels(self) -> Labels:
        """The labels of the labelling layer, rows named as DeepLabCut names them."""
        layer = self.labels_layer()
        names = list(self.bodyparts().names)
        frames = np.unique(layer.data[:, 0].round().astype(int))
        joints = np.full((len(frames), len(names), 2), np.nan)
        for (frame, y, x), label in zip(layer.data, layer.features["label"], strict=True):
            joints[np.searchsorted(frames, round(frame)), names.index(label)] = (x, y)
        return labels_from_joints(joints, names, frame_rows(self.keypoints(), frames))

    # -- actions -------------------------------------------------------------------------

    def _busy(self) -> bool:
        if self.task is not None and self.task.running:
            show_info("Naming is busy; wait or cancel.")
            return True
        return False

    def _start(self, func: Any, *args: Any, desc: str, on_return: Any) -> None:
        self.task = Task(
            func, *args, desc=desc, on_return=on_return, on_finish=lambda: self._running(False)
        )
        self.task.start()
        self._running(True)

    def _running(self, running: bool) -> None:
        for button in (self.propose_button, self.import_button, self.fit_button):
            button.enabled = not running
        self.refit_button.enabled = self.correct_button.enabled = (
            not running and self.naming is not None
        )
        self.export_button.enabled = not running and self.naming is not None
        self.cancel_button.enabled = running

    def propose(self) -> None:
        """Propose frames to label (diverse poses) in a worker, then go to the first."""
        if self._busy():
            return
        try:
            result = self.keypoints()
            self.bodyparts()
            done = np.unique(self.labels_layer().data[:, 0].round().astype(int))
        except Exception as exc:
            show_exception("Proposing frames", exc)
            return
        self._start(
            _propose,
            result,
            self.n_propose.value,
            done,
            desc="Proposing frames",
            on_return=self._proposed,
        )

    def _proposed(self, frames: np.ndarray) -> None:
        self.frames = sorted({*self.frames, *(int(f) for f in frames)})
        self.viewer.dims.set_current_step(0, int(frames[0]))
        self.current = 0
        name = self.step_bodypart(0)
        self.status.value = f"{len(frames)} frames to label (. and , to move); next: {name}"

    def import_labels(self) -> None:
        """Put the labels of a DeepLabCut file into the labelling layer."""
        try:
            labels = load_labels(self.dlc_labels.value)
            frames = labelled_frames(self.keypoints(), labels, self.dlc_labels.value)
            if not self.names.value.strip():
                self.set_bodyparts(Bodyparts(tuple(labels.names)))
        except Exception as exc:
            show_exception("Importing labels", exc)
            return
        rows, columns = np.nonzero(labels.labelled)
        self._fill_labels(
            frames[rows], labels.joints[rows, columns], [labels.names[c] for c in columns]
        )
        self.frames = sorted({*self.frames, *(int(f) for f in frames)})
        self.status.value = f"{len(frames)} labelled frames imported"

    def fit(self) -> None:
        """Fit the map on the labelled frames and predict every frame, in a worker."""
        if self._busy():
            return
        try:
            result, labels, parts = self.keypoints(), self.labels(), self.bodyparts()
        except Exception as exc:
            show_exception("Fitting", exc)
            return
        out = default_named_path(self.chosen.path)
        overwrite = self.replace.value or out in self._written
        self._start(
            _fit,
            result,
            labels,
            parts,
            out,
            overwrite,
            desc="Naming bodyparts",
            on_return=self._fitted,
        )

    def _fitted(self, naming: Naming) -> None:
        self.naming = naming
        assert naming.named.path is not None
        self._written.add(naming.named.path)
        self.show_predictions(naming)
        errors = ", ".join(
            f"{n} {e:.1f}"
            for n, e in zip(naming.map.bodyparts.names, naming.map.loo_error_px, strict=True)
        )
        self.status.value = f"Leave-one-out error (px): {errors}"

    def show_predictions(self, naming: Naming) -> None:
        """The named predictions as Points (by bodypart) and the skeleton as Vectors."""
        named = naming.named
        names = named.keypoint_names
        t, j = named.keypoints.shape[:2]
        xy = named.keypoints.reshape(-1, 2)
        keep = np.isfinite(xy).all(axis=1)
        frames = np.repeat(np.arange(t), j)[keep]
        assert named.likelihood is not None
        features = pd.DataFrame(
            {
                "keypoint": pd.Categorical.from_codes(
                    np.tile(np.arange(j), t)[keep], categories=names
                ),
                "likelihood": named.likelihood.reshape(-1)[keep],
            }
        )
        replace_layer(
            self.viewer,
            (
                np.column_stack([frames, xy[keep, 1], xy[keep, 0]]),
                {
                    "name": PREDICTIONS_LAYER,
                    "features": features,
                    "face_color": "keypoint",
                    "face_color_cycle": _colours(j),
                    "size": self._point_size(),
                    "symbol": "disc",
                    "metadata": {"path": str(named.path)},
                },
                "points",
            ),
        )
        edges = naming.map.bodyparts.edge_indices
        if edges:
            a, b = (np.array(side) for side in zip(*edges, strict=True))
            start, end = named.keypoints[:, a], named.keypoints[:, b]  # (T, E, 2)
            vectors = np.zeros((t, len(edges), 2, 3))
            vectors[..., 0, 0] = np.arange(t)[:, None]
            vectors[..., 0, 1:] = start[..., ::-1]
            vectors[..., 1, 1:] = (end - start)[..., ::-1]
            vectors = vectors.reshape(-1, 2, 3)
            good = np.isfinite(vectors).all(axis=(1, 2))
            replace_layer(
                self.viewer,
                (
                    vectors[good],
                    {"name": SKELETON_LAYER, "edge_width": 1.5, "edge_color": "white"},
                    "vectors",
                ),
            )
        self.viewer.layers.selection.active = self.labels_layer()

    def correct_frame(self) -> None:
        """Copy this frame's predictions into the labelling layer, to move them and refit."""
        if self.naming is None:
            return
        frame = current_frame(self.viewer)
        layer = self.labels_layer()
        on_frame = np.flatnonzero(layer.data[:, 0].round() == frame)
        data, labels = (
            np.delete(layer.data, on_frame, axis=0),
            list(np.delete(layer.features["label"].to_numpy(), on_frame)),
        )
        predicted = self.naming.named.keypoints[frame]
        names = self.naming.named.keypoint_names
        ok = np.isfinite(predicted).all(axis=1)
        frames = np.concatenate([data[:, 0], np.full(ok.sum(), frame)])
        xy = np.concatenate([data[:, [2, 1]], predicted[ok]])
        self._fill_labels(
            frames, xy, labels + [n for n, good in zip(names, ok, strict=True) if good]
        )
        self.frames = sorted({*self.frames, frame})
        self.status.value = f"Frame {frame}: move the points (select mode, 3), then Refit"

    def export(self) -> None:
        """Write ``machinelabels-iter0.h5`` (least likely frames) and the labels, in a worker."""
        if self._busy() or self.naming is None:
            return
        try:
            video = self.naming.named.require_video()
        except Exception as exc:
            show_exception("Exporting", exc)
            return
        folder = Path(self.folder.value or video.parent / "labeled-data" / video.stem)
        self._start(
            _export,
            self.naming,
            folder,
            self.n_refine.value,
            self.replace.value,
            desc="Exporting machinelabels",
            on_return=self._exported,
        )

    def _exported(self, paths: tuple[Path, Path]) -> None:
        machine, collected = paths
        self.status.value = f"Wrote {machine.name} and {collected.name} in {machine.parent}"
        show_info(f"Open {machine.parent} in napari-deeplabcut to refine, then import the labels.")

    def cancel(self) -> None:
        """Stop the running work at its next progress report."""
        if self.task is not None and self.task.running:
            self.task.cancel()
        else:
            show_error("Nothing is running.")
