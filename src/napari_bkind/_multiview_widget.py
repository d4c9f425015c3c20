"""Dock widget *Multi-view 3D*: a calibrated session's views, 3D training, 3D keypoints.

Choose one video per camera and the anipose ``calibration.toml``, *Check* them (the engine
matches videos to cameras and checks they are in step), *Show views* (one lazy RGB layer
per camera, in napari's grid), *Train* (in a worker: progress, live loss, *Cancel*; a run
folder with a checkpoint is resumed), *Extract & show* and *Export*. Everything slow runs
in a napari thread worker; the buttons wait while one runs.

One viewer holds the 2D views and the 3D keypoints, so every layer has four axes
``(t, a, b, c)``: time first (the synchronised frame), then

* 3D layers ``(t, x, y, z)`` in world units, shown with *3D view* (``ndisplay = 3``);
* views ``(t, 1, H, W)`` (RGB) and their reprojected keypoints ``(t, 0, y, x)``, shown in
  the grid (``ndisplay = 2``). Once 3D keypoints exist, napari slides along their ``x``
  in 2D, so the views' single plane is stretched over that range (scale and translate
  along axis 1) and stays in sight wherever that slider is.

The grid pairs each camera's image with its reprojected keypoints: our layers go to the
bottom of the layer list as ``image, reprojected`` per camera (then the 3D layers,
hidden in 2D so they take no grid cell) and ``grid.stride`` is 2; reordering them by hand
breaks the pairing until the next *Extract & show*.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import napari
import numpy as np
import pandas as pd
from napari.components.grid import GridCanvas
from napari.layers import Layer
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from bkind_model.config import DEFAULT_MINUTES, Config, json_object
from bkind_model.errors import BKindError
from bkind_model.io.video import VideoSource, open_video
from bkind_model.multiview.export import export_3d
from bkind_model.multiview.extraction import extract_3d
from bkind_model.multiview.results import Result3D
from bkind_model.multiview.training import Status3D, Trainer3D, default_config_3d
from bkind_model.multiview.views import Session, open_session
from bkind_model.train.loop import TrainingEvent
from napari_bkind._layers import LayerData, keypoint_points
from napari_bkind._loss_plot import LossPlot
from napari_bkind._palette import rgba
from napari_bkind._session import replace_layer
from napari_bkind._tasks import Task, TaskCancelled
from napari_bkind._train_widget import (
    AUTO,
    _format_seconds,
    available_devices,
    more_settings_help,
)

#: Separates the video paths in the *Videos* line edit.
VIDEO_SEPARATOR = ";"
POINTS_3D = "3D keypoints"
SKELETON_3D = "3D skeleton"
CHECKPOINT_FILE = "checkpoint.pt"
RESULTS_FILE = "keypoints3d.h5"
#: Metadata key of our layers: the camera (views, reprojections) or "3d".
VIEW_KEY = "bkind_multiview"
#: Export formats: label, ``export_3d``'s ``to`` (``"h5"``: our own file), default name.
EXPORTS = (
    ("bkind 3D results (.h5)", "h5", RESULTS_FILE),
    ("anipose pose-3d table (.csv)", "csv", "keypoints3d.csv"),
    ("sleap-anipose points3d.h5", "anipose", "points3d.h5"),
)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.m4v *.mpg *.mpeg *.webm *.wmv);;All files (*)"
TABLE_COLUMNS = ("camera", "video", "frames", "fps", "offset")
#: Centre and thickness along axis 1 of the views' plane (see the module docstring).
Plane = tuple[float, float]
FLAT: Plane = (0.0, 1.0)
Spin = TypeVar("Spin", QSpinBox, QDoubleSpinBox)


def reprojected_name(camera: str) -> str:
    """Name of the layer of a camera's reprojected keypoints."""
    return f"reprojected ({camera})"


def parse_videos(text: str) -> list[str]:
    """The video paths of the *Videos* field (separated by :data:`VIDEO_SEPARATOR`)."""
    return [part.strip() for part in text.split(VIDEO_SEPARATOR) if part.strip()]


def parse_offsets(text: str) -> dict[str, int]:
    """``"cam_b=3, cam_c=1"`` -> ``{"cam_b": 3, "cam_c": 1}``; empty text: no offsets.

    Raises
    ------
    ValueError
        For an item that is not ``NAME=FRAMES`` with whole frames.
    """
    offsets = {}
    for item in (part.strip() for part in text.replace(";", ",").split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        try:
            offsets[name.strip()] = int(value)
        except ValueError:
            raise ValueError(
                f"Offset {item!r}: write CAMERA=FRAMES (whole frames), e.g. cam_b=3."
            ) from None
    return offsets


@dataclass(frozen=True)
class OpenedSession:
    """A checked session and its videos, open for display.

    Attributes
    ----------
    session : Session
        Cameras, videos, offsets and the synchronised frame count.
    sources : list of VideoSource
        The videos, in camera order.
    """

    session: Session
    sources: list[VideoSource]


# -- work done in the workers ----------------------------------------------------------------


def _reporter(task: Task, emit: Callable[[int, int], None]) -> Callable[..., None]:
    """A progress callback for the engine: the activity dock, the widget's bar, cancel."""

    def report(done: int, total: int, message: str = "") -> None:
        task.report(done, total, message)
        emit(int(done), int(total))

    return report


def _open(
    task: Task,
    videos: list[str],
    calibration: str,
    offsets: dict[str, int],
    emit: Callable[[int, int], None],
) -> OpenedSession:
    """Match the videos to the cameras, check them, and open each for display."""
    session = open_session(videos, calibration, offsets=offsets or None)
    report = _reporter(task, emit)
    sources = []
    for done, path in enumerate(session.videos):
        report(done, session.n_views, "opening videos")
        sources.append(open_video(path))
    return OpenedSession(session, sources)


def _train(
    task: Task,
    session: Session,
    out_dir: Path,
    config: Config,
    started: Callable[[Callable[[], None]], None],
    emit: Callable[[int, int], None],
) -> Iterator[Status3D | TrainingEvent]:
    """Yield the run's status, an event per step, and its status at the end.

    ``started`` receives the trainer's thread-safe cancel; the run folder is released
    when the worker ends, however it ends.
    """
    trainer = Trainer3D(session, out_dir, config, prepare_progress=_reporter(task, emit))
    try:
        started(trainer.cancel)
        yield trainer.status()
        if task.cancelled.is_set():
            trainer.cancel()
        yield from trainer.run()
        yield trainer.status()
    finally:
        trainer.close()


def _extract(
    task: Task, checkpoint: Path, session: Session, out: Path, emit: Callable[[int, int], None]
) -> tuple[Path, Result3D]:
    """3D keypoints of every synchronised frame, saved to ``out``."""
    result = extract_3d(checkpoint, session, progress=_reporter(task, emit))
    return result.save(out), result


def _export(task: Task, result: Result3D, results_path: Path, to: str, out: Path) -> Path:
    """Write ``result`` (saved at ``results_path``) as our h5, anipose CSV or points3d.h5."""
    if to == "h5":
        return result.save(out)
    return export_3d(results_path, to=to, out=out, overwrite=True)  # the save dialog asked


# -- layers ----------------------------------------------------------------------------------


def plane_transform(plane: Plane) -> dict[str, tuple[float, ...]]:
    """Scale and translate placing a view's layer on ``plane`` (axis 1), pixels elsewhere."""
    centre, thickness = plane
    return {"scale": (1.0, thickness, 1.0, 1.0), "translate": (0.0, centre, 0.0, 0.0)}


def view_image(
    source: VideoSource, camera: str, offset: int, n_frames: int, plane: Plane = FLAT
) -> LayerData:
    """A camera's synchronised frames as a lazy RGB Image ``(T, 1, H, W, 3)`` on ``plane``."""
    frames = source.frames[offset : offset + n_frames][:, None]
    kwargs = {"name": camera, "rgb": True, "metadata": {VIEW_KEY: camera}}
    return frames, kwargs | plane_transform(plane), "image"


def scene_span(points: np.ndarray) -> float:
    """The largest extent of the finite points ``(..., 3)`` along x, y or z (1 if none)."""
    rows = points.reshape(-1, 3)
    finite = rows[np.isfinite(rows).all(axis=1)]
    span = float(np.ptp(finite, axis=0).max()) if len(finite) else 0.0
    return span or 1.0


def depth_plane(points: np.ndarray) -> Plane:
    """Centre and thickness along x of a plane covering every finite 3D point ``(..., 3)``.

    The views' layers are put on it (axis 1 is the 3D layers' x) so that napari's
    slider along that axis in 2D never slices them away.
    """
    x = points[..., 0][np.isfinite(points[..., 0])]
    if not len(x):
        return FLAT
    low, high = float(x.min()), float(x.max())
    return (low + high) / 2, 1.02 * (high - low) + 1.0


def points_3d_layer(result: Result3D) -> LayerData:
    """The 3D keypoints as Points ``(t, x, y, z)``, one colour per keypoint."""
    n_frames, n_keypoints = result.points.shape[:2]
    ids = np.tile(np.arange(n_keypoints), n_frames)
    data = np.column_stack(
        [np.repeat(np.arange(n_frames), n_keypoints), result.points.reshape(-1, 3)]
    )
    keep = np.isfinite(data).all(axis=1)
    features = pd.DataFrame(
        {"keypoint": pd.Categorical.from_codes(ids[keep], categories=result.keypoint_names)}
    )
    kwargs = {
        "name": POINTS_3D,
        "features": features,
        "face_color": rgba(n_keypoints)[ids[keep]],
        "border_width": 0,
        "size": 0.03 * scene_span(result.points),
        "metadata": {VIEW_KEY: "3d"},
    }
    return data[keep], kwargs, "points"


def skeleton_layer(result: Result3D) -> LayerData:
    """The learned skeleton as Vectors ``(T * E, 2, 4)``: one bone per edge and frame.

    Each vector starts at ``(t, keypoint a)`` and points to keypoint ``b`` with no step in
    time, so napari shows frame ``t``'s bones on frame ``t`` in 3D.
    """
    edges = np.asarray(result.edges, int).reshape(-1, 2)
    n_frames = len(result.points)
    start = result.points[:, edges[:, 0]]  # (T, E, 3)
    step = result.points[:, edges[:, 1]] - start
    t = np.repeat(np.arange(n_frames), len(edges))[:, None]
    data = np.stack(
        [
            np.column_stack([t, start.reshape(-1, 3)]),
            np.column_stack([np.zeros_like(t), step.reshape(-1, 3)]),
        ],
        axis=1,
    )
    keep = np.isfinite(data).all(axis=(1, 2))
    kwargs = {
        "name": SKELETON_3D,
        "edge_width": 0.008 * scene_span(result.points),
        "edge_color": "white",
        "vector_style": "line",
        "length": 1.0,
        "metadata": {VIEW_KEY: "3d"},
    }
    return data[keep].reshape(-1, 2, 4), kwargs, "vectors"


def reprojected_layer(result: Result3D, view: int, plane: Plane = FLAT) -> LayerData:
    """One camera's reprojected 3D keypoints as Points ``(t, 0, y, x)`` on its image's plane."""
    camera = result.cameras[view]
    data, kwargs, layer_type = keypoint_points(
        result.reprojected[:, view],
        result.keypoint_names,
        frame_size=camera.image_shape,
        name=reprojected_name(camera.name),
        metadata={VIEW_KEY: camera.name},
    )
    del kwargs["axis_labels"]  # a 2D video's (frame, y, x); this layer has the plane axis too
    return np.insert(data, 1, 0.0, axis=1), kwargs | plane_transform(plane), layer_type


def grid_of(viewer: napari.Viewer) -> GridCanvas:
    """The viewer's grid settings (``viewer.canvas.grid`` from napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None else viewer.grid


def fit_view(viewer: napari.Viewer, layers: list[Layer]) -> None:
    """Reset the camera onto ``layers`` (napari < 0.9 fits every layer, hidden ones too)."""
    if "layers" in inspect.signature(viewer.reset_view).parameters:
        viewer.reset_view(layers=layers)
    else:
        viewer.reset_view()


# -- the widget ------------------------------------------------------------------------------


class MultiViewWidget(QWidget):
    """Session, views, 3D training, extraction, display and export.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the views and 3D keypoints go to.
    """

    #: ``(done, total)`` from the workers, shown in the widget's progress bar.
    progressed = Signal(int, int)

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.setWindowTitle("Multi-view 3D")
        self.opened: OpenedSession | None = None
        self.result: Result3D | None = None
        self.results_path: Path | None = None
        #: The cameras whose layers are shown, in order.
        self.cameras: list[str] = []
        self.task: Task | None = None
        self._cancel_run: Callable[[], None] | None = None
        self._run_status: Status3D | None = None
        # The form scrolls inside the dock: it is taller than a laptop's window.
        content = QWidget()
        layout = QVBoxLayout(content)
        for group in (self._session_group(), self._train_group(), self._results_group()):
            layout.addWidget(group)
        self.status = QLabel("Choose the videos and calibration, then press Check.")
        self.message = QLabel("")
        self.message.setStyleSheet("color: #f07070")
        for label in (self.status, self.message):
            label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for widget in (self.status, self.message, self.progress_bar, self.cancel_button):
            layout.addWidget(widget)
        layout.addStretch()
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        bar = scroll.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(content.minimumSizeHint().width() + bar)
        self.progressed.connect(self._show_progress)
        for edit in (self.videos, self.calibration, self.offsets):
            edit.textChanged.connect(self._forget_session)
        self._update_buttons()

    # -- building ------------------------------------------------------------------------

    def _browse_row(self, edit: QLineEdit, browse: Callable[[], None]) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("Browse...")
        button.clicked.connect(browse)
        layout.addWidget(edit)
        layout.addWidget(button)
        return row

    def _session_group(self) -> QGroupBox:
        self.videos = QLineEdit()
        self.videos.setToolTip(
            f"One video per camera, separated by '{VIDEO_SEPARATOR}'; each file name contains "
            "its camera's name"
        )
        self.calibration = QLineEdit()
        self.calibration.setToolTip("The cameras' anipose calibration.toml")
        self.offsets = QLineEdit()
        self.offsets.setPlaceholderText("e.g. cam_b=3, cam_c=1")
        self.offsets.setToolTip("Frames to skip at the start of a view to synchronise it")
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.check)
        self.show_button = QPushButton("Show views")
        self.show_button.clicked.connect(self.show_views)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TABLE_COLUMNS.index("video"), QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setMaximumHeight(6 * self.table.fontMetrics().height() * 2)
        self.summary = QLabel("")
        group = QGroupBox("Session")
        form = QFormLayout(group)
        form.addRow("Videos", self._browse_row(self.videos, self._browse_videos))
        form.addRow("Calibration", self._browse_row(self.calibration, self._browse_calibration))
        form.addRow("Offsets", self.offsets)
        form.addRow(self._buttons(self.check_button, self.show_button))
        form.addRow(self.table)
        form.addRow(self.summary)
        return group

    def _train_group(self) -> QGroupBox:
        defaults = default_config_3d()
        self.run_folder = QLineEdit()
        self.run_folder.setPlaceholderText("default: bkind3d/")
        self.run_folder.setToolTip(
            "checkpoint.pt and keypoints3d.h5 go here (default: bkind3d beside the "
            "calibration); a checkpoint there is resumed (choose another folder to start afresh)"
        )
        self.n_keypoints = self._spin(QSpinBox(), defaults.n_keypoints, 2, 50)
        self.minutes = self._spin(QDoubleSpinBox(), DEFAULT_MINUTES, 0, 7 * 24 * 60)
        self.minutes.setToolTip("Time budget of training; 0 trains exactly Steps steps")
        self.steps = self._spin(QSpinBox(), defaults.steps, 1, 10_000_000)
        self.image_size = self._spin(QSpinBox(), 0, 0, 1024)
        self.image_size.setSpecialValueText(AUTO)
        self.image_size.setToolTip(
            "Side of the model input, px; auto (0) chooses it from the views"
        )
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.more = QLineEdit()
        example = '{"batch_size": 4, "lr": 0.001}'
        self.more.setPlaceholderText('JSON, e.g. {"batch_size": 8}')
        self.more.setToolTip(more_settings_help(default_config_3d(), example))
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.plot = LossPlot()
        group = QGroupBox("Train")
        form = QFormLayout(group)
        form.addRow("Run folder", self._browse_row(self.run_folder, self._browse_run_folder))
        for label, widget in (
            ("Keypoints", self.n_keypoints),
            ("Minutes", self.minutes),
            ("Steps", self.steps),
            ("Image size (px)", self.image_size),
            ("Device", self.device),
            ("More settings", self.more),
        ):
            form.addRow(label, widget)
        form.addRow(self.train_button)
        form.addRow(self.plot)
        self.minutes.valueChanged.connect(lambda value: self.steps.setEnabled(not value))
        self.steps.setEnabled(not self.minutes.value())
        return group

    def _results_group(self) -> QGroupBox:
        self.extract_button = QPushButton("Extract && show")
        self.extract_button.clicked.connect(self.extract)
        self.view_3d_button = QPushButton("3D view")
        self.view_3d_button.setCheckable(True)
        self.view_3d_button.toggled.connect(self._apply_view_mode)
        self.export_format = QComboBox()
        self.export_format.addItems([label for label, _, _ in EXPORTS])
        self.export_path = QLineEdit()
        self.export_path.setPlaceholderText("default: run folder")
        self.export_path.setToolTip("Where the export goes (default: in the run folder)")
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        group = QGroupBox("3D keypoints")
        form = QFormLayout(group)
        form.addRow(self._buttons(self.extract_button, self.view_3d_button))
        form.addRow("Format", self.export_format)
        form.addRow("File", self._browse_row(self.export_path, self._browse_export))
        form.addRow(self.export_button)
        return group

    @staticmethod
    def _buttons(*buttons: QPushButton) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in buttons:
            layout.addWidget(button)
        return row

    @staticmethod
    def _spin(box: Spin, value: float, low: float, high: float) -> Spin:
        box.setRange(low, high)
        box.setValue(value)
        return box

    # -- file dialogs --------------------------------------------------------------------

    def _browse_videos(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "One video per camera", "", VIDEO_FILTER)
        if paths:
            self.videos.setText(f"{VIDEO_SEPARATOR} ".join(paths))

    def _browse_calibration(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "anipose calibration", "", "Calibration (*.toml);;All files (*)"
        )
        if path:
            self.calibration.setText(path)

    def _browse_run_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder")
        if path:
            self.run_folder.setText(path)

    def _browse_export(self) -> None:
        default = EXPORTS[self.export_format.currentIndex()][2]
        kind = f"{self.export_format.currentText()} (*{Path(default).suffix})"
        path, _ = QFileDialog.getSaveFileName(self, "Export 3D keypoints", default, kind)
        if path:
            self.export_path.setText(path)

    # -- settings ------------------------------------------------------------------------

    def config(self) -> Config:
        """The run settings: 3D defaults, *More settings*, then the fields.

        Raises
        ------
        ValueError
            For *More settings* that are not a JSON object, or values no run can use
            (:class:`bkind_model.errors.ConfigError`).
        """
        more = json_object(self.more.text(), "More settings", '{"batch_size": 4}')
        fields = {
            "n_keypoints": self.n_keypoints.value(),
            "steps": self.steps.value(),
            "minutes": self.minutes.value() or None,
            "image_size": self.image_size.value() or None,
            "device": self.device.currentText(),
        }
        return Config.from_dict(default_config_3d().to_dict() | more | fields)

    def out_dir(self) -> Path:
        """The run folder: the field, or ``bkind3d`` beside the calibration."""
        if self.run_folder.text().strip():
            return Path(self.run_folder.text().strip())
        return Path(self.calibration.text().strip()).parent / "bkind3d"

    # -- running work --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a worker is running."""
        return self.task is not None and self.task.running

    def _run(self, task: Task, what: str) -> None:
        """Start ``task`` with ``what`` in the status line; errors go to the message label."""
        self.message.setText("")
        self.status.setText(what)
        self.progress_bar.setRange(0, 0)  # busy until the first report
        task.failed.connect(self._failed)
        self.task = task.start()
        self._update_buttons()

    def _task(self, func: Callable[..., Any], *args: Any, desc: str, **handlers: Any) -> Task:
        return Task(func, *args, desc=desc, on_finish=self._finished, **handlers)

    def cancel(self) -> None:
        """Stop the running work (training: after this step, keeping a checkpoint)."""
        if self.busy:
            self.status.setText("cancelling...")
            self.task.cancel()

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, TaskCancelled):
            self.status.setText("cancelled")
        elif isinstance(exc, BKindError | OSError | ValueError):
            self.message.setText(str(exc))
        else:
            self.message.setText(f"unexpected {type(exc).__name__}: {exc}")

    def _finished(self) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0 if self.message.text() else 1)
        self._update_buttons()

    def _show_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)

    def _update_buttons(self) -> None:
        idle = not self.busy
        ready = idle and self.opened is not None
        for widget in (self.check_button, self.videos, self.calibration, self.offsets):
            widget.setEnabled(idle)
        for button in (self.show_button, self.train_button, self.extract_button):
            button.setEnabled(ready)
        self.view_3d_button.setEnabled(idle and self.result is not None)
        self.export_button.setEnabled(idle and self.result is not None)
        self.cancel_button.setEnabled(not idle)

    # -- session -------------------------------------------------------------------------

    def check(self) -> None:
        """Open the session in a worker, then list its cameras; errors in the label."""
        if self.busy:
            return
        try:
            offsets = parse_offsets(self.offsets.text())
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        task = self._task(
            _open,
            parse_videos(self.videos.text()),
            self.calibration.text().strip(),
            offsets,
            self.progressed.emit,
            desc="Checking the session",
            on_return=self._checked,
        )
        self._run(task, "checking the session...")

    def _forget_session(self) -> None:
        self.opened = None
        self.table.setRowCount(0)
        self.summary.setText("")
        self._update_buttons()

    def _checked(self, opened: OpenedSession) -> None:
        self.opened = opened
        session = opened.session
        self.table.setRowCount(session.n_views)
        for row, (name, video, source, offset) in enumerate(
            zip(session.names, session.videos, opened.sources, session.offsets, strict=True)
        ):
            cells = (name, Path(video).name, source.n_frames, f"{source.fps:g}", offset)
            for column, value in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()
        self.summary.setText(
            f"{session.n_views} cameras, {session.n_frames} synchronised frames at "
            f"{session.fps:g} fps"
        )
        self.status.setText("session checked")

    def show_views(self) -> None:
        """One RGB Image layer per camera (synchronised frames, lazy), in the grid."""
        if self.opened is None:
            return
        self._add_views()
        self._arrange()
        self.view_3d_button.setChecked(False)
        self._apply_view_mode(False)

    def _add_views(self) -> None:
        """The session's images, on the plane of the shown 3D keypoints if they are its."""
        session = self.opened.session
        shown = self.result is not None and self.result.camera_names == session.names
        plane = depth_plane(self.result.points) if shown else FLAT
        for name, source, offset in zip(
            session.names, self.opened.sources, session.offsets, strict=True
        ):
            replace_layer(self.viewer, view_image(source, name, offset, session.n_frames, plane))
        self.cameras = list(session.names)

    # -- training ------------------------------------------------------------------------

    def train(self) -> None:
        """Train (or resume) in a worker; returns at once."""
        if self.busy or self.opened is None:
            return
        try:
            config = self.config()
        except ValueError as exc:
            self.message.setText(f"Training settings: {exc}")
            return
        self._cancel_run = self._run_status = None
        self.plot.clear()
        out_dir = self.out_dir()
        task = self._task(
            _train,
            self.opened.session,
            out_dir,
            config,
            self._started,
            self.progressed.emit,
            desc="BKinD-3D training",
            on_yield=self._on_training,
            on_cancel=self._cancel_trainer,
        )
        task.worker.finished.connect(self._trained)
        self._run(task, f"preparing the views; run folder {out_dir}")

    def _started(self, cancel: Callable[[], None]) -> None:
        """Called in the worker once the trainer exists: keep its cancel function."""
        self._cancel_run = cancel

    def _cancel_trainer(self) -> None:
        if self._cancel_run is not None:
            self._cancel_run()

    def _on_training(self, item: Status3D | TrainingEvent) -> None:
        if isinstance(item, Status3D):
            first = self._run_status is None
            self._run_status = item
            if first:
                self.status.setText(self._run_start_text(item))
            return
        message = (
            f"step {item.step}/{item.total_steps}, loss {item.losses['total']:.4g}, "
            f"ETA {_format_seconds(item.eta_s)}"
        )
        self.status.setText(message)
        self.plot.add(item.step, item.losses["total"])
        self._show_progress(item.step, item.total_steps)
        self.task.show_progress(item.step, item.total_steps, message)

    @staticmethod
    def _run_start_text(status: Status3D) -> str:
        views = f"{len(status.camera_names)} views on {status.device}"
        if status.step:
            return f"resuming {status.checkpoint} from step {status.step} ({views})"
        return f"training from scratch ({views})"

    def _trained(self) -> None:
        final = self._run_status
        if final is None or final.checkpoint is None:
            if not self.message.text():
                self.status.setText("stopped before a checkpoint was written")
            return
        self.status.setText(
            f"stopped at step {final.step}/{final.total_steps}; checkpoint {final.checkpoint}"
        )

    # -- extraction and display ----------------------------------------------------------

    def extract(self) -> None:
        """Extract the 3D keypoints of the session in a worker, then show them."""
        if self.busy or self.opened is None:
            return
        out_dir = self.out_dir()
        checkpoint = out_dir / CHECKPOINT_FILE
        if not checkpoint.is_file():
            self.message.setText(
                f"No {CHECKPOINT_FILE} in {out_dir}: train first, or choose the run folder "
                "of a trained model."
            )
            return
        task = self._task(
            _extract,
            checkpoint,
            self.opened.session,
            out_dir / RESULTS_FILE,
            self.progressed.emit,
            desc="Extracting 3D keypoints",
            on_return=self._show_result,
        )
        self._run(task, "extracting 3D keypoints...")

    def _show_result(self, done: tuple[Path, Result3D]) -> None:
        """Views, their reprojected keypoints, the 3D keypoints and skeleton."""
        self.results_path, result = done
        self.result = result
        self._add_views()
        plane = depth_plane(result.points)
        for view in range(len(result.camera_names)):
            replace_layer(self.viewer, reprojected_layer(result, view, plane))
        replace_layer(self.viewer, points_3d_layer(result))
        replace_layer(self.viewer, skeleton_layer(result))
        self._arrange()
        self._apply_view_mode(self.view_3d_button.isChecked())
        errors = ", ".join(f"{k} {v:.2f} px" for k, v in result.per_view_error().items())
        self.status.setText(f"3D keypoints in {self.results_path}; reprojection error {errors}")

    def _view_layers(self) -> list[Layer]:
        """Each camera's image and reprojected keypoints (those in the viewer), in order."""
        names = [name for camera in self.cameras for name in (camera, reprojected_name(camera))]
        return [self.viewer.layers[n] for n in names if n in self.viewer.layers]

    def _layers_3d(self) -> list[Layer]:
        return [self.viewer.layers[n] for n in (POINTS_3D, SKELETON_3D) if n in self.viewer.layers]

    def _arrange(self) -> None:
        """Our layers at the bottom of the list, each image with its reprojections."""
        views = self._view_layers()
        for index, layer in enumerate([*views, *self._layers_3d()]):
            self.viewer.layers.move(self.viewer.layers.index(layer), index)
        paired = any(reprojected_name(n) in self.viewer.layers for n in self.cameras)
        grid_of(self.viewer).stride = 2 if paired else 1

    def _apply_view_mode(self, in_3d: bool) -> None:
        """3D: the 3D layers alone, ``ndisplay = 3``; 2D: the views in the grid."""
        views, layers_3d = self._view_layers(), self._layers_3d()
        # In this order: napari 0.9 draws no points in the grid's other cells when
        # ndisplay changes after the grid and the visibilities were set.
        self.viewer.dims.ndisplay = 3 if in_3d else 2
        grid_of(self.viewer).enabled = not in_3d
        for layer in views:
            layer.visible = not in_3d
        for layer in layers_3d:
            layer.visible = in_3d
        fit_view(self.viewer, (layers_3d if in_3d else views) or list(self.viewer.layers))

    # -- export --------------------------------------------------------------------------

    def export(self) -> None:
        """Write the shown 3D keypoints in the chosen format (in a worker)."""
        if self.busy or self.result is None:
            return
        _, to, default = EXPORTS[self.export_format.currentIndex()]
        text = self.export_path.text().strip()
        out = Path(text) if text else self.results_path.parent / default
        task = self._task(
            _export,
            self.result,
            self.results_path,
            to,
            out,
            desc="Exporting 3D keypoints",
            on_return=lambda path: self.status.setText(f"exported {path}"),
        )
        self._run(task, f"exporting to {out}...")
