"""Dock widget *Behaviour*: label bouts, train, predict, find motifs, correct, export.

Behaviours are typed as names; a bout is labelled by marking its first and last frame on
the viewer's time axis (``[`` and ``]``, or the buttons), with the behaviour chosen.
Training, prediction and motif finding run in thread workers (:mod:`_tasks`) on the
keypoints of a results file. The ethogram plot below follows the current frame, and a
click on it jumps there. Predictions (or motifs, once named) become labels to correct
and train on again; labels and ethograms are saved as CSV (:mod:`bkind_model.behaviour`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from qtpy.QtWidgets import QWidget

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.classifier import BehaviourClassifier, train_classifier
from bkind_model.behaviour.ethogram import Ethogram, write_ethograms
from bkind_model.behaviour.labels import (
    UNLABELLED,
    BehaviourLabels,
    read_labels,
    video_key,
    write_intervals,
)
from bkind_model.behaviour.motifs import MotifSettings, find_motifs
from bkind_model.errors import BKindError
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult
from napari_bkind._chosen_results import ChosenResults
from napari_bkind._palette import rgba
from napari_bkind._session import current_frame
from napari_bkind._tasks import Task, show_exception

SHORTCUTS = (
    "Label bouts on the time axis. Shortcuts:\n"
    "  [  the bout starts at this frame\n"
    "  ]  the bout ends at this frame: it is labelled with the chosen behaviour\n"
    "Click the ethogram to jump to a frame."
)
ROW_PX = 14
NAME_PX = 70


class EthogramPlot(QWidget):
    """Labels and ethogram against frames, one row per behaviour, with the current frame.

    The top row shows the labelled frames in their behaviour's colour; each row below
    one behaviour of the ethogram. ``frame_clicked`` carries the frame under a click.
    """

    frame_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self.labels = np.zeros(0, np.int16)
        self.codes = np.zeros(0, np.int16)
        self.n_frames = 0
        self.cursor = 0
        self.setMinimumHeight(3 * ROW_PX)
        self.setToolTip("Labels (top) and ethogram; click to jump to a frame")

    def show_data(self, names: list[str], labels: np.ndarray, codes: np.ndarray) -> None:
        """Draw ``(T,)`` label codes and ``(T,)`` ethogram codes (-1: none) of ``names``."""
        self.names = list(names)
        self.labels, self.codes = np.asarray(labels), np.asarray(codes)
        self.n_frames = max(len(self.labels), len(self.codes))
        self.setMinimumHeight((len(self.names) + 2) * ROW_PX)
        self.update()

    def set_cursor(self, frame: int) -> None:
        """Move the current-frame line."""
        self.cursor = int(frame)
        self.update()

    def _x(self, frame: float) -> float:
        width = max(self.width() - NAME_PX, 1)
        return NAME_PX + width * frame / max(self.n_frames, 1)

    def frame_at(self, x: float) -> int:
        """The frame drawn at widget x coordinate ``x`` (px)."""
        width = max(self.width() - NAME_PX, 1)
        frame = int((x - NAME_PX) / width * max(self.n_frames, 1))
        return int(np.clip(frame, 0, max(self.n_frames - 1, 0)))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Jump to the clicked frame."""
        if self.n_frames:
            self.frame_clicked.emit(self.frame_at(event.position().x()))

    def _runs(self, painter: QPainter, codes: np.ndarray, row: int, only: int | None) -> None:
        """Fill the frames of each behaviour (or only of ``only``) in ``row``."""
        colours = rgba(max(len(self.names), 1))
        if not len(codes):
            return
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        for start, end in zip(starts, ends, strict=True):
            code = int(codes[start])
            if code == UNLABELLED or (only is not None and code != only):
                continue
            r, g, b, _ = (255 * colours[code % len(colours)]).astype(int)
            x0, x1 = self._x(start), self._x(end)
            painter.fillRect(
                QRectF(x0, row * ROW_PX + 1, max(x1 - x0, 1.0), ROW_PX - 2), QColor(r, g, b)
            )

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the rows, their names and the cursor."""
        painter = QPainter(self)
        painter.setPen(QPen(QColor(200, 200, 200)))
        if not self.n_frames:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "ethogram appears here")
            return
        painter.drawText(QRectF(0, 0, NAME_PX, ROW_PX), "labels")
        self._runs(painter, self.labels, 0, None)
        for i, name in enumerate(self.names):
            painter.setPen(QPen(QColor(200, 200, 200)))
            painter.drawText(QRectF(0, (i + 1) * ROW_PX, NAME_PX, ROW_PX), name)
            self._runs(painter, self.codes, i + 1, i)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        x = self._x(self.cursor + 0.5)
        painter.drawLine(int(x), 0, int(x), self.height())


def _train(
    task: Task, result: KeypointResult, labels: BehaviourLabels
) -> tuple[BehaviourClassifier, Ethogram]:
    model = train_classifier([result], labels, progress=task.report)
    return model, model.predict(result)


def _predict(task: Task, model: BehaviourClassifier, result: KeypointResult) -> Ethogram:
    task.report(0, 1, "predicting")
    ethogram = model.predict(result)
    task.report(1, 1)
    return ethogram


def _motifs(task: Task, result: KeypointResult, n_motifs: int) -> Ethogram:
    (ethogram,) = find_motifs([result], MotifSettings(n_motifs=n_motifs), progress=task.report)
    return ethogram


class BehaviourWidget(Container):
    """Behaviour names, labelled bouts, classifier, motifs, ethogram and its export.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer showing the video whose keypoints are classified.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.chosen = ChosenResults(
            napari_viewer,
            "Keypoints of the video (results .h5 of Discover keypoints or named)",
            BehaviourError,
        )
        self.results = self.chosen.edit
        self.names = LineEdit(
            label="Behaviours", value="walk, groom, rest", tooltip="Names, comma separated"
        )
        self.behaviour = ComboBox(label="Label as", choices=[])
        self.start_button = PushButton(text="Start here [")
        self.stop_button = PushButton(text="Stop here ]")
        self.unlabel_button = PushButton(text="Unlabel bout")
        self.labels_file = FileEdit(
            label="Labels CSV", mode="w", filter="*.csv", nullable=True, value=None
        )
        self.load_button = PushButton(text="Load labels")
        self.save_button = PushButton(text="Save labels")
        self.train_button = PushButton(text="Train")
        self.predict_button = PushButton(text="Predict", enabled=False)
        self.n_motifs = SpinBox(label="Motifs", value=8, min=2, max=50)
        self.motifs_button = PushButton(text="Find motifs")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.ethogram_names = LineEdit(
            label="Ethogram names", tooltip="New names of the ethogram's columns, comma separated"
        )
        self.rename_button = PushButton(text="Rename")
        self.as_labels_button = PushButton(text="Use as labels", enabled=False)
        self.export_file = FileEdit(
            label="Export to", mode="w", filter="*.csv", nullable=True, value=None
        )
        self.replace = CheckBox(text="Replace existing files", value=False)
        self.export_button = PushButton(text="Export ethogram", enabled=False)
        self.status = Label(value="")
        self.plot = EthogramPlot()

        def row(*widgets: Any) -> Container:
            return Container(widgets=list(widgets), layout="horizontal", labels=False)

        super().__init__(
            widgets=[
                self.chosen.layer,
                self.chosen.edit,
                self.names,
                self.behaviour,
                row(self.start_button, self.stop_button, self.unlabel_button),
                self.labels_file,
                row(self.load_button, self.save_button),
                row(self.train_button, self.predict_button),
                self.n_motifs,
                row(self.motifs_button, self.cancel_button),
                self.ethogram_names,
                row(self.rename_button, self.as_labels_button),
                self.export_file,
                self.replace,
                self.export_button,
                self.status,
            ]
        )
        self.native.layout().addWidget(self.plot)
        self.native.setToolTip(SHORTCUTS)
        self.task: Task | None = None
        self.labels = BehaviourLabels(self._typed_names())
        self.model: BehaviourClassifier | None = None
        self.ethogram: Ethogram | None = None
        self.start: int | None = None
        self._update_choices()
        self.names.changed.connect(self._names_changed)
        self.start_button.changed.connect(self.mark_start)
        self.stop_button.changed.connect(self.mark_stop)
        self.unlabel_button.changed.connect(self.unlabel)
        self.load_button.changed.connect(self.load_labels)
        self.save_button.changed.connect(self.save_labels)
        self.train_button.changed.connect(self.train)
        self.predict_button.changed.connect(self.predict)
        self.motifs_button.changed.connect(self.find_motifs)
        self.cancel_button.changed.connect(self.cancel)
        self.rename_button.changed.connect(self.rename)
        self.as_labels_button.changed.connect(self.use_as_labels)
        self.export_button.changed.connect(self.export)
        self.plot.frame_clicked.connect(self.jump_to)
        napari_viewer.dims.events.current_step.connect(self._follow)
        napari_viewer.bind_key("[", lambda _viewer: self.mark_start(), overwrite=True)
        napari_viewer.bind_key("]", lambda _viewer: self.mark_stop(), overwrite=True)

    # -- names and keypoints -------------------------------------------------------------

    def _typed_names(self) -> list[str]:
        return [n.strip() for n in self.names.value.split(",") if n.strip()]

    def _names_changed(self) -> None:
        """Follow the typed names: new ones are added, removed ones lose their bouts."""
        try:
            typed = BehaviourLabels(self._typed_names()).names
        except BehaviourError as exc:
            self.status.value = str(exc)
            return
        for name in [n for n in self.labels.names if n not in typed]:
            self.labels.remove_name(name)
        for name in [n for n in typed if n not in self.labels.names]:
            self.labels.add_name(name)
        self.labels.names = typed
        self._update_choices()
        self.refresh()

    def _update_choices(self) -> None:
        self.behaviour.choices = []  # else magicgui keeps the old ones in their places
        self.behaviour.choices = list(self.labels.names)

    def keypoints(self) -> KeypointResult:
        """The chosen results file's keypoints (loaded once)."""
        return self.chosen.load()

    def _guard(self, action: str, func: Callable[[], Any]) -> Any:
        """Run ``func``; a user error becomes a notification and the status line."""
        try:
            return func()
        except (BKindError, OSError) as exc:
            self.status.value = f"{action}: {exc}"
            show_exception(action, exc)
            return None

    # -- labelling -----------------------------------------------------------------------

    def mark_start(self) -> int:
        """The bout being labelled starts at the current frame."""
        self.start = current_frame(self.viewer)
        self.status.value = f"Bout starts at frame {self.start}; go to its end and press ]."
        return self.start

    def mark_stop(self) -> None:
        """Label the frames from the marked start to the current frame."""
        self._label_bout(self.behaviour.value)

    def unlabel(self) -> None:
        """Unlabel the frames from the marked start to the current frame."""
        self._label_bout(None)

    def _label_bout(self, behaviour: str | None) -> None:
        def label() -> None:
            video = video_key(self.keypoints())
            stop = current_frame(self.viewer)
            start = stop if self.start is None else self.start
            first, last = min(start, stop), max(start, stop)
            if last >= self.keypoints().n_frames:
                raise BehaviourError(
                    f"{self.chosen.path}: frame {last} is past the video's last frame "
                    f"{self.keypoints().n_frames - 1}; choose the results of the video shown."
                )
            self.labels.label(video, behaviour, first, last)
            self.start = None
            what = behaviour or "unlabelled"
            self.status.value = f"Frames {first}-{last}: {what}."
            self.refresh()

        self._guard("Labelling", label)

    def load_labels(self) -> None:
        """Read labels from the labels CSV (intervals, or an exported ethogram)."""

        def load() -> None:
            labels = read_labels(self.labels_file.value)
            self.labels = labels
            self.names.changed.disconnect(self._names_changed)
            self.names.value = ", ".join(labels.names)
            self.names.changed.connect(self._names_changed)
            self._update_choices()
            self.refresh()
            self.status.value = f"Loaded {len(labels.intervals)} bouts."

        self._guard("Loading labels", load)

    def save_labels(self) -> None:
        """Write the labels as an intervals CSV."""
        path = self._guard(
            "Saving labels",
            lambda: write_intervals(self._target(self.labels_file.value), self.labels, True),
        )
        if path is not None:
            self.status.value = f"Saved {path}."

    def _target(self, path: Any) -> Any:
        """``path`` if it may be written: new, or replacing it is ticked."""
        if not path:
            raise BehaviourError("no file chosen: choose where to write the CSV.")
        check_output(
            path, overwrite=self.replace.value, option="a tick in 'Replace existing files'"
        )
        return path

    # -- engine work ---------------------------------------------------------------------

    def _run(self, func: Callable[..., Any], *args: Any, desc: str, done: Callable) -> None:
        self.task = Task(
            func, *args, desc=desc, on_return=done, on_finish=lambda: self._busy(False)
        )
        self._busy(True)
        self.task.start()

    def _busy(self, busy: bool) -> None:
        for button in (self.train_button, self.motifs_button):
            button.enabled = not busy
        self.predict_button.enabled = not busy and self.model is not None
        self.cancel_button.enabled = busy

    def train(self) -> None:
        """Train the classifier on the labelled frames and predict the video, in a worker."""
        result = self._guard("Training", self.keypoints)
        if result is not None:
            labels = BehaviourLabels(list(self.labels.names), list(self.labels.intervals))
            self._run(_train, result, labels, desc="Training behaviour", done=self._trained)

    def _trained(self, trained: tuple[BehaviourClassifier, Ethogram]) -> None:
        self.model, ethogram = trained
        self.show(ethogram)
        self.status.value = f"Trained on {sum(self.model.trained_on.values())} labelled frames."

    def predict(self) -> None:
        """Predict the ethogram of the video, in a worker."""
        result = self._guard("Predicting", self.keypoints)
        if result is not None and self.model is not None:
            self._run(_predict, self.model, result, desc="Predicting behaviour", done=self.show)

    def find_motifs(self) -> None:
        """Find motifs in the video's keypoints without labels, in a worker."""
        result = self._guard("Finding motifs", self.keypoints)
        if result is not None:
            self._run(_motifs, result, self.n_motifs.value, desc="Finding motifs", done=self.show)

    def cancel(self) -> None:
        """Stop the running work at its next progress report."""
        if self.task is not None:
            self.task.cancel()

    # -- the ethogram --------------------------------------------------------------------

    def show(self, ethogram: Ethogram) -> None:
        """Show an ethogram (a prediction or motifs) in the plot."""
        self.ethogram = ethogram
        self.ethogram_names.value = ", ".join(ethogram.names)
        self.as_labels_button.enabled = self.export_button.enabled = True
        self.status.value = f"Ethogram of {ethogram.video}: {', '.join(ethogram.names)}."
        self.refresh()

    def rename(self) -> None:
        """Give the ethogram's columns (e.g. motifs) the typed names."""
        if self.ethogram is not None:
            names = [n.strip() for n in self.ethogram_names.value.split(",")]
            renamed = self._guard("Renaming", lambda: self.ethogram.renamed(names))
            if renamed is not None:
                self.show(renamed)

    def use_as_labels(self) -> None:
        """Make the ethogram the labels of its video (to correct and train on again)."""
        if self.ethogram is None:
            return
        imported = self.ethogram.as_labels()
        others = [i for i in self.labels.intervals if i.video != self.ethogram.video]
        self.labels = BehaviourLabels(imported.names, others + imported.intervals)
        self.names.changed.disconnect(self._names_changed)
        self.names.value = ", ".join(imported.names)
        self.names.changed.connect(self._names_changed)
        self._update_choices()
        self.status.value = "The ethogram is now the labels: correct bouts, then Train."
        self.refresh()

    def export(self) -> None:
        """Write the ethogram as a frame x behaviour CSV."""
        if self.ethogram is None:
            return
        ethogram = self.ethogram
        path = self._guard(
            "Exporting",
            lambda: write_ethograms(self._target(self.export_file.value), [ethogram], True),
        )
        if path is not None:
            self.status.value = f"Exported {path}."

    def refresh(self) -> None:
        """Redraw the plot: this video's labels and the ethogram."""
        if self.chosen.result is None:
            labels = np.zeros(0, np.int16)
        else:
            labels = self.labels.codes(video_key(self.chosen.result), self.chosen.result.n_frames)
        names = self.ethogram.names if self.ethogram is not None else self.labels.names
        codes = self.ethogram.codes if self.ethogram is not None else np.zeros(0, np.int16)
        # Labels are coloured by the ethogram's column of the same name, where there is one.
        mapped = np.array(
            [
                names.index(self.labels.names[c])
                if c >= 0 and self.labels.names[c] in names
                else -1
                for c in labels
            ],
            dtype=np.int16,
        )
        self.plot.show_data(names, mapped, codes)
        self.plot.set_cursor(current_frame(self.viewer))

    def _follow(self, _event: Any = None) -> None:
        self.plot.set_cursor(current_frame(self.viewer))

    def jump_to(self, frame: int) -> None:
        """Show ``frame`` in the viewer."""
        if self.viewer.dims.ndim >= 3:
            self.viewer.dims.set_current_step(0, int(frame))


__all__ = ["BehaviourWidget", "EthogramPlot"]
