"""Dock widget *Train*: train B-KinD on the chosen videos, watching it learn.

Training runs in a napari thread worker (the viewer stays responsive): progress and ETA
in the activity dock, the loss in a small live plot, the convergence verdict, and the
keypoints of the engine's preview frames (refreshed at every check) and of the frame
being viewed (every few seconds) as one Points layer.
*Cancel* stops after the current step and keeps a checkpoint; *Resume* continues it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import napari
import numpy as np
import torch
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info

from bkind_model.config import DEFAULT_MINUTES, Config, json_object, with_changes
from bkind_model.train.loop import PLAN_STEPS, Trainer, TrainingEvent, TrainingStatus
from napari_bkind._focus import FocusHook, FocusPreview
from napari_bkind._layers import RESULT_KEY, keypoint_points
from napari_bkind._loss_plot import LossPlot
from napari_bkind._session import (
    SOURCE_KEY,
    beside_video,
    current_frame,
    replace_layer,
    training_setup,
    training_videos,
)
from napari_bkind._tasks import Task, show_exception

PREVIEW_LAYER = "B-KinD training preview"


def available_devices() -> list[str]:
    """Device choices: ``auto`` (the GPU when there is one), the CPU, and any GPU found."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


#: Settings that have a field of their own (or come from the other widgets).
FORM_SETTINGS = frozenset(
    {"n_keypoints", "steps", "minutes", "image_size", "device", "frame_gap", "gap_unit"}
    | {"crop_size", "masks"}
)
#: What an image size of 0 (chosen from the views or the animal's window) is shown as.
AUTO = "auto"


def more_settings_help(defaults: Config, example: str) -> str:
    """Tooltip of a *More settings* box: the format, an example, every other key's default."""
    others = {k: v for k, v in defaults.to_dict().items() if k not in FORM_SETTINGS}
    listed = ", ".join(f"{key} {value}" for key, value in others.items())
    return (
        f"Other run settings as one JSON object, e.g. {example} (empty: the defaults). "
        f"Keys and defaults: {listed} (described in bkind_model.config.Config)."
    )


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _train(
    task: Task,
    videos: list[str],
    out_dir: Path,
    config: Config,
    resume: bool,
    focus: FocusHook,
    started: Callable[[Callable[[], None]], None],
) -> Iterator[TrainingStatus | TrainingEvent]:
    """Prepare the data, then yield the run's status, its events, and its status at the end.

    ``started`` receives the trainer's (thread-safe) cancel function; the GUI never sees
    the trainer itself, only status snapshots and events.
    """
    trainer = Trainer(videos, out_dir, config, resume=resume, prepare_progress=task.report)
    try:
        started(trainer.cancel)
        yield trainer.status()
        if task.cancelled.is_set():
            trainer.cancel()
        yield from trainer.run(hooks=[focus])
        yield trainer.status()  # after the last step, or after a cancel (checkpoint written)
    finally:
        trainer.close()  # the run folder is free for other processes


class TrainWidget(Container):
    """Settings, Start / Resume / Cancel, live loss, verdict and keypoint preview.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the video layers.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.viewer = napari_viewer
        self.setup = training_setup(napari_viewer)
        defaults = Config()
        self.n_keypoints = SpinBox(label="Keypoints", value=defaults.n_keypoints, min=1, max=50)
        self.minutes = FloatSpinBox(
            label="Minutes",
            value=DEFAULT_MINUTES,
            min=0,
            max=7 * 24 * 60,
            step=1,
            tooltip="Time budget of training (the steps are set from the measured speed); "
            "0 trains exactly Steps steps",
        )
        self.steps = SpinBox(label="Steps", value=defaults.steps, min=1, max=10_000_000)
        self.expected = Label(value="")
        self.image_size = ComboBox(
            label="Image size (px)",
            choices=[(AUTO, 0)] + [(str(side), side) for side in range(32, 1025, 16)],
            value=defaults.image_size or 0,
            tooltip="Side of the model input, px; auto chooses it from the animal's "
            "window (96-128 px)",
        )
        self.device = ComboBox(label="Device", choices=available_devices(), value="auto")
        example = '{"batch_size": 8, "lr": 0.001}'
        self.more = LineEdit(
            label="More settings", value="", tooltip=more_settings_help(defaults, example)
        )
        self.more.native.setPlaceholderText('JSON, e.g. {"batch_size": 8}')
        self.run_folder = FileEdit(
            label="Run folder",
            mode="d",
            nullable=True,
            value=None,
            tooltip="Where checkpoint.pt goes (default: <video>-bkind beside the video)",
        )
        self.start_button = PushButton(text="Start")
        self.resume_button = PushButton(text="Resume")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.verdict = Label(value="")
        super().__init__(
            widgets=[
                self.n_keypoints,
                self.minutes,
                self.steps,
                self.expected,
                self.image_size,
                self.device,
                self.more,
                self.run_folder,
                Container(
                    widgets=[self.start_button, self.resume_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
                self.status,
                self.verdict,
            ]
        )
        self.plot = LossPlot()
        self.native.layout().addWidget(self.plot)
        self.task: Task | None = None
        #: The running (or last) run's status snapshot, and how to cancel it.
        self.run_status: TrainingStatus | None = None
        self._cancel_run: Callable[[], None] | None = None
        self.focus_hook = FocusHook()
        #: Last preview: keypoints ``(N_PREVIEW, K, 2)`` of the engine's preview frames,
        #: and of the viewed frame (of the first training video).
        self._preview: np.ndarray | None = None
        self._focus: FocusPreview | None = None
        napari_viewer.dims.events.current_step.connect(self._follow_viewed_frame)
        self.start_button.changed.connect(lambda: self.start(resume=False))
        self.resume_button.changed.connect(lambda: self.start(resume=True))
        self.cancel_button.changed.connect(self.cancel)
        self.minutes.changed.connect(self._show_expected)
        self.steps.changed.connect(self._show_expected)
        self._show_expected()

    def _show_expected(self) -> None:
        """Say how long a run with these settings takes, before it starts."""
        minutes = self.minutes.value
        self.steps.enabled = not minutes
        self.expected.value = (
            f"Expected: about {minutes:g} min of training"
            if minutes
            else f"Expected: {self.steps.value} steps (the time shows after {PLAN_STEPS} steps)"
        )

    # -- settings --------------------------------------------------------------------------

    def config(self) -> Config:
        """The run settings: defaults, gap, window and masks, *More settings*, the fields.

        Raises
        ------
        ValueError
            For *More settings* that are not a JSON object, or values no run can use
            (:class:`bkind_model.errors.ConfigError`).
        """
        more = json_object(self.more.value, "More settings", '{"batch_size": 8}')
        setup = {
            "frame_gap": self.setup.frame_gap,
            "gap_unit": self.setup.gap_unit,
            "crop_size": self.setup.crop_size,
            "masks": self.setup.masks,
        }
        fields = {
            "n_keypoints": self.n_keypoints.value,
            "steps": self.steps.value,
            "minutes": self.minutes.value or None,
            "image_size": self.image_size.value or None,
            "device": self.device.value,
        }
        chosen = {key: value for key, value in setup.items() if value is not None}
        return Config.from_dict(with_changes(Config().to_dict(), chosen | more | fields))

    # -- buttons ---------------------------------------------------------------------------

    def start(self, resume: bool = False) -> None:
        """Start (or resume) training in a worker; returns at once."""
        if self.task is not None and self.task.running:
            show_info("Training is already running; cancel it first.")
            return
        videos = training_videos(self.viewer)
        if not videos:
            show_error("No video to train on: open a video or image folder (File > Open) first.")
            return
        try:
            config = self.config()
        except ValueError as exc:
            show_exception("Training settings", exc)
            return
        sources = [layer.metadata[SOURCE_KEY] for layer in videos]
        out_dir = Path(
            self.run_folder.value or beside_video(sources[0], f"{Path(sources[0]).stem}-bkind")
        )
        if not resume and (out_dir / "checkpoint.pt").exists():
            show_info(
                f"Starting afresh: the checkpoint in {out_dir} will be replaced at the first "
                "save. Cancel and press Resume to continue it instead."
            )
        self.run_status = self._cancel_run = None
        self.focus_hook = FocusHook()
        self._preview = self._focus = None
        self.plot.clear()
        self.verdict.value = ""
        self.status.value = f"preparing frames; run folder {out_dir}"
        self.task = Task(
            _train,
            sources,
            out_dir,
            config,
            resume,
            self.focus_hook,
            self._started,
            desc="B-KinD training",
            on_yield=self._on_yield,
            on_cancel=self._cancel_trainer,
            on_finish=self._finished,
        )
        self.task.start()
        self._set_running(True)

    def cancel(self) -> None:
        """Stop after the current step; a checkpoint is written."""
        if self.task is not None and self.task.running:
            self.status.value = "cancelling after this step..."
            self.task.cancel()

    def _started(self, cancel: Callable[[], None]) -> None:
        """Called in the worker once the trainer exists: keep its cancel function."""
        self._cancel_run = cancel

    def _cancel_trainer(self) -> None:
        if self._cancel_run is not None:
            self._cancel_run()

    def _follow_viewed_frame(self, _event=None) -> None:
        """Ask the training thread for keypoints on the frame now shown (first video)."""
        self.focus_hook.focus = (0, current_frame(self.viewer))

    def _set_running(self, running: bool) -> None:
        self.start_button.enabled = not running
        self.resume_button.enabled = not running
        self.cancel_button.enabled = running

    # -- worker events ---------------------------------------------------------------------

    def _on_yield(self, item: TrainingStatus | TrainingEvent) -> None:
        if isinstance(item, TrainingStatus):
            started = self.run_status is None
            self.run_status = item
            if not started:
                return  # the final status, shown by _finished
            self._follow_viewed_frame()
            self.status.value = (
                f"training {len(item.keypoint_names)} keypoints on {item.device}, gap "
                f"{item.videos[0].gap} frames, from step {item.step}"
            )
            return
        event = item
        self.plot.add(event.step, event.losses["total"])
        message = (
            f"step {event.step}/{event.total_steps}, loss {event.losses['total']:.4g}, "
            f"ETA {_format_seconds(event.eta_s)}"
        )
        self.status.value = message
        first = self.run_status.step if self.run_status is not None else 0
        if event.planned or event.step == first + 1 + PLAN_STEPS:
            self.expected.value = (
                f"Expected: {event.total_steps} steps, about {_format_seconds(event.eta_s)} to go"
            )
        self.task.show_progress(event.step, event.total_steps, message)
        if event.convergence is not None:
            report = event.convergence
            self.verdict.value = f"{report.verdict}. {report.hint}".strip()
        if event.preview_keypoints is not None:
            self._preview = event.preview_keypoints
        focus = event.extras.get(self.focus_hook.name)
        if isinstance(focus, FocusPreview):
            self._focus = focus
        if event.preview_keypoints is not None or focus is not None:
            self._show_preview()
        if event.checkpoint is not None:
            self.setup.checkpoint = str(event.checkpoint)

    def _show_preview(self) -> None:
        """The preview frames and the viewed frame as one Points layer (video 0's frames)."""
        run = self.run_status
        if run is None:
            return
        names = list(run.keypoint_names)
        frames = np.empty(0, int)
        keypoints = np.empty((0, len(names), 2), np.float32)
        if self._preview is not None:
            frames, keypoints = run.preview_frames, self._preview
        if self._focus is not None:
            keep = frames != self._focus.frame
            frames = np.append(frames[keep], self._focus.frame)
            keypoints = np.concatenate([keypoints[keep], self._focus.keypoints[None]])
        video = run.videos[0]
        metadata = {
            RESULT_KEY: {
                "keypoint_names": names,
                "n_frames": video.n_frames,
                "video_path": str(video.path),
                "fps": video.fps,
            }
        }
        replace_layer(
            self.viewer,
            keypoint_points(
                keypoints,
                names,
                frames=frames,
                frame_size=run.source_size,
                name=PREVIEW_LAYER,
                metadata=metadata,
            ),
        )

    def _finished(self) -> None:
        self._set_running(False)
        final = self.run_status
        if final is None or final.checkpoint is None:
            self.status.value = "stopped before a checkpoint was written"
            return
        self.setup.checkpoint = str(final.checkpoint)
        self.status.value = (
            f"stopped at step {final.step}/{final.total_steps} ({final.verdict}); "
            f"checkpoint {final.checkpoint}"
        )
        show_info(f"B-KinD training {self.status.value}.")
