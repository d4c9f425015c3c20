"""Training: one loop shared by the command line and the napari plugin.

:class:`Trainer` prepares the videos (:func:`~bkind_model.frames.pipeline.prepare_video`),
builds or resumes the model, and :meth:`Trainer.run` yields a :class:`TrainingEvent`
after every step, so a caller can draw progress, show the convergence verdict and
preview keypoints, and cancel between steps (:meth:`Trainer.cancel`). Callers that need
more after each step (a viewer's preview of the frame shown) register a
:class:`StepHook`; other threads read :meth:`Trainer.status`, a snapshot, never the
trainer's internals. Checkpoints are written atomically every ``checkpoint_every``
steps, at the end, and when cancelled; a run resumes exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bkind_model.config import Config
from bkind_model.devices import autocast, check_memory, place_model, resolve_device
from bkind_model.errors import BKindError, ConfigError, RefusedByRankZero
from bkind_model.frames.gap import suggest_frame_gap
from bkind_model.frames.pairs import (
    PairSampler,
    StepBatch,
    StepPairs,
    batch_stream,
    loader_workers,
)
from bkind_model.frames.pipeline import (
    PreparedVideo,
    auto_image_size,
    letterbox_for,
    prepare_video,
)
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.frames.windows import measure_crop_size
from bkind_model.io.atomic import ensure_folder
from bkind_model.io.checkpoint import (
    checkpoint_config,
    ensure_compatible,
    ensure_same_videos,
    load_checkpoint,
    save_checkpoint,
)
from bkind_model.io.lock import RunLock
from bkind_model.io.results import default_keypoint_names
from bkind_model.io.video import VideoSource, open_video
from bkind_model.model.network import BKinD
from bkind_model.train.cached import CachedPairSampler
from bkind_model.train.convergence import ConvergenceMonitor, ConvergenceReport, foreground_masks
from bkind_model.train.distributed import Ranks, distributed_loss, join, signal_code
from bkind_model.train.objective import Objective

N_PREVIEW = 16
CHECK_EVERY = 100  # steps between convergence checks
WARMUP_STEPS = 50
#: Steps timed, after the first of a session, before a time budget is turned into steps.
PLAN_STEPS = 20


def lr_factor(step: int, steps: int, planning: bool) -> float:
    """Learning-rate multiplier at ``step`` of ``steps``: linear warm-up, cosine decay to 0.1.

    While a time budget is still being planned (``planning``) the rate stays at its peak.
    """
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    progress = 0.0 if planning else min(1.0, step / max(1, steps))
    return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def budget_steps(step: int, steps_per_s: float, minutes: float, seconds_done: float) -> int:
    """The step count a time budget of ``minutes`` fits, after ``seconds_done`` s at ``step``."""
    remaining_s = max(0.0, 60 * minutes - seconds_done)
    return max(1, step + int(steps_per_s * remaining_s))


class TrainingDiverged(BKindError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainingEvent:
    """Progress of a run after one step.

    Attributes
    ----------
    step : int
        Steps done so far.
    total_steps : int
        Steps the run will do.
    losses : dict of str to float
        Loss terms of this step.
    elapsed_s : float
        Seconds spent training in this session (excludes data preparation).
    eta_s : float
        Estimated seconds left.
    convergence : ConvergenceReport or None
        Set on steps where the signals were checked.
    preview_keypoints : ndarray or None
        ``(N_PREVIEW, K, 2)`` keypoints (x, y) in source pixels on the preview frames,
        set with ``convergence``.
    checkpoint : Path or None
        Set on steps where a checkpoint was written.
    planned : bool
        True on the step where the time budget (``Config.minutes``) fixed
        ``total_steps``.
    extras : dict of str to object
        What the run's step hooks returned on this step, by hook name (see
        :class:`StepHook`).
    """

    step: int
    total_steps: int
    losses: dict[str, float]
    elapsed_s: float
    eta_s: float
    convergence: ConvergenceReport | None = None
    preview_keypoints: np.ndarray | None = None
    checkpoint: Path | None = None
    planned: bool = False
    extras: dict[str, object] = field(default_factory=dict)


class StepHook(Protocol):
    """Called in the training thread after every step; what it returns rides on the event.

    A napari widget uses one to preview keypoints on the frame the user is looking at,
    without the loop knowing about viewers. Return None when there is nothing to report.

    Attributes
    ----------
    name : str
        Key of the hook's results in :attr:`TrainingEvent.extras`.
    """

    name: str

    def __call__(self, trainer: Any, event: TrainingEvent) -> object | None:
        """Look at the trainer after a step, maybe return something for the event."""
        ...


@dataclass(frozen=True)
class VideoInfo:
    """A training video as a status snapshot shows it.

    Attributes
    ----------
    path : Path
        The source.
    n_frames : int
        Frames in it.
    fps : float
        Frames per second.
    gap : int
        Frame gap used, frames.
    """

    path: Path
    n_frames: int
    fps: float
    gap: int


@dataclass(frozen=True)
class TrainingStatus:
    """A read-only snapshot of a run, safe to hand to another thread.

    Attributes
    ----------
    step, total_steps : int
        Steps done and planned.
    device : str
        Where training runs.
    videos : tuple of VideoInfo
        The training videos.
    keypoint_names : tuple of str
        Default names of the K keypoints.
    source_size : tuple of int
        ``(height, width)`` of the videos, px.
    input_size : tuple of int
        ``(height, width)`` of the model input, px.
    preview_frames : ndarray
        ``(N_PREVIEW,)`` frames of the first video that previews are drawn on.
    verdict, hint : str
        The last convergence verdict and its advice ("unchecked" before the first check).
    checkpoint : Path or None
        The checkpoint file, once one exists.
    """

    step: int
    total_steps: int
    device: str
    videos: tuple[VideoInfo, ...]
    keypoint_names: tuple[str, ...]
    source_size: tuple[int, int]
    input_size: tuple[int, int]
    preview_frames: np.ndarray
    verdict: str
    hint: str
    checkpoint: Path | None


@dataclass
class History:
    """What a run has done, saved in its checkpoint (steps, losses, convergence, time)."""

    steps: list[int] = field(default_factory=list)
    losses: list[dict[str, float]] = field(default_factory=list)
    convergence: list[dict] = field(default_factory=list)
    #: Seconds of training over all sessions of the run.
    seconds: float = 0.0
    #: The time budget (minutes) the step count was last planned for, or None.
    planned_for: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain containers, for the checkpoint."""
        return {
            "steps": self.steps,
            "losses": self.losses,
            "convergence": self.convergence,
            "seconds": self.seconds,
            "planned_for": self.planned_for,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (missing entries: empty)."""
        return cls(
            list(values.get("steps", [])),
            list(values.get("losses", [])),
            list(values.get("convergence", [])),
            float(values.get("seconds", 0.0)),
            values.get("planned_for"),
        )


class StepLoop:
    """The loop every trainer shares: steps, a time budget, checkpoints, cancel, signals.

    A subclass sets ``config``, ``step``, ``history`` (:class:`History`), ``lock``
    (:class:`~bkind_model.io.lock.RunLock`) and ``checkpoint_path``, and implements
    :meth:`train_step` and :meth:`state`; :meth:`_on_step` adds its own checks to the
    events. In a distributed run ``ranks`` is set: the ranks then agree on losses,
    stopping and planning every step, and only rank 0 (which alone holds ``lock``)
    writes checkpoints.
    """

    config: Config
    step: int
    history: History
    lock: RunLock | None
    checkpoint_path: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    #: The random stream of a trainer that keeps one (saved in checkpoints); None when
    #: every step's randomness comes from the step itself (:class:`StepPairs`).
    rng: torch.Generator | None = None
    #: The signal that stopped :meth:`run` (``"SIGTERM"`` ...), or None.
    stopped_by: str | None = None
    #: This process's place in a distributed run (None: training alone).
    ranks: Ranks | None = None
    _cancel: bool = False

    def train_step(self) -> dict[str, float]:
        """One optimiser step; returns the loss terms (with ``total``)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly, as saved in the checkpoint."""
        raise NotImplementedError

    def _on_step(self, event: TrainingEvent, last: bool) -> None:
        """Add a subclass's checks to the event of a step (``last``: the final step)."""

    def _loop_state(self) -> dict[str, Any]:
        """The part of :meth:`state` every trainer has: weights, optimiser, randomness."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
            "history": self.history.to_dict(),
        }
        if self.rng is not None:
            state["rng"] = self.rng.get_state()
        return state

    def _restore(self, saved: dict[str, Any]) -> None:
        """Continue exactly where :meth:`_loop_state` was saved."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.rng is not None:
            self.rng.set_state(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        self.step = int(saved["step"])
        self.history = History.from_dict(saved.get("history", {}))

    def _optimise(
        self, terms: dict[str, torch.Tensor], clip_norm: float | None = None
    ) -> dict[str, float]:
        """Sum the loss terms, refuse a non-finite loss, take one optimiser step.

        ``clip_norm`` caps the gradients' total norm first (None: no clipping).
        """
        loss = torch.stack(list(terms.values())).sum()
        values = torch.stack([v.detach().float() for v in [*terms.values(), loss]])
        if self.ranks is not None:  # the mean over the ranks: logged, and checked by all
            values = self.ranks.mean(values)
        if not torch.isfinite(values[-1]):
            kept = (
                "the last good checkpoint is kept"
                if self.checkpoint_path.exists()
                else "no checkpoint had been written yet"
            )
            raise TrainingDiverged(
                f"{self.checkpoint_path}: the loss became {values[-1].item()} at step "
                f"{self.step + 1}; "
                f"training stopped and {kept}. Lower the learning rate (lr) and "
                "resume (or start again)."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip_norm)
        self.optimizer.step()
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDiverged(
                f"{self.checkpoint_path}: the weights became NaN or infinite at step "
                f"{self.step + 1} (lr {self.config.lr:g} is too high for this run); nothing "
                "was saved from it. Lower the learning rate (lr) and start again (--restart) "
                "or resume."
            )
        self.scheduler.step()
        self.step += 1
        return dict(zip([*terms, "total"], values.tolist(), strict=True))

    def _lr_factor(self, step: int) -> float:
        return lr_factor(step, self.config.steps, self.planning)

    @property
    def planning(self) -> bool:
        """True while a time budget is set and the step count not yet planned for it."""
        return self.config.minutes is not None and self.history.planned_for != self.config.minutes

    def _plan_steps(self, steps_per_s: float) -> int:
        """Set ``config.steps`` to what the budget's remaining time fits at this speed.

        In a distributed run every rank takes rank 0's plan: their clocks started at
        slightly different times, and ranks that planned differently would wait on each
        other forever at the end.
        """
        assert self.config.minutes is not None
        steps = budget_steps(self.step, steps_per_s, self.config.minutes, self.history.seconds)
        if self.ranks is not None:
            steps = int(self.ranks.share(steps))
        self.config = self.config.replace(steps=steps)
        self.history.planned_for = self.config.minutes
        return self.config.steps

    def save(self) -> Path:
        """Write the checkpoint now (atomically); in a distributed run, rank 0 does."""
        if self.ranks is not None and not self.ranks.leader:
            return self.checkpoint_path
        return save_checkpoint(self.checkpoint_path, self.state())

    def cancel(self) -> None:
        """Ask :meth:`run` to stop after the current step (a checkpoint is written).

        Safe to call from any thread.
        """
        self._cancel = True

    def close(self) -> None:
        """Release the run folder for other processes (also when the process ends).

        A distributed run also leaves the process group it started.
        """
        if self.lock is not None:
            self.lock.release()
        if self.ranks is not None:
            self.ranks.leave()

    def _stopping(self) -> bool:
        """Whether to stop before the next step: cancelled, or (distributed) any rank is."""
        if self.ranks is None:
            return self._cancel
        own = None if self.stopped_by is None else getattr(signal, self.stopped_by)
        code = self.ranks.stop_reason(self._cancel, own)
        # Only the agreed code counts: a signal landing during the all-reduce waits for the
        # next step's agreement, or this rank would stop alone.
        if not code:
            return False
        number = signal_code(code)
        if number is not None and self.stopped_by is None:
            self.stopped_by = signal.Signals(number).name
        self._cancel = True
        return True

    def _agreed_speed(self, steps_per_s: float) -> float:
        """The speed to plan a budget with: this process's, or the slowest rank's."""
        return steps_per_s if self.ranks is None else self.ranks.slowest(steps_per_s)

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP stop training at the next step boundary.

        The step under way finishes and a checkpoint is written, so a resume continues
        bit-exactly. A second SIGINT (Ctrl-C twice) stops at once without saving the
        unfinished step; the last checkpoint stays. Only in the main thread (Python's
        rule for signal handlers); elsewhere the caller cancels with :meth:`cancel`.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}

        def stop(signum: int, _frame: object) -> None:
            if self._cancel and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stopped_by = names[signal.Signals(signum)]
            self._cancel = True

        previous = {sig: signal.signal(sig, stop) for sig in names}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run(self, hooks: Sequence[StepHook] = ()) -> Iterator[TrainingEvent]:
        """Train until ``config.steps``, yielding an event after every step.

        Checkpoints are written every ``checkpoint_every`` steps, every
        ``checkpoint_minutes`` of training, at the end, and when the run stops early: after
        :meth:`cancel`, a SIGINT, SIGTERM or SIGHUP (:attr:`stopped_by`), or when the
        consumer closes the generator. A step is never saved half done.

        Parameters
        ----------
        hooks : sequence of StepHook
            Called after every step; their results go to :attr:`TrainingEvent.extras`.
        """
        total = self.config.steps
        start, done_at_start = time.perf_counter(), self.step
        seconds_before, timed_from = self.history.seconds, start
        saved_at, saved_step = start, self.step
        diverged = in_step = False
        try:
            with self._stop_on_signals():
                while (self.step < total or self.planning) and not self._stopping():
                    in_step = True
                    losses = self.train_step()
                    in_step = False
                    now = time.perf_counter()
                    elapsed = now - start
                    self.history.seconds = seconds_before + elapsed
                    done = self.step - done_at_start
                    planned = False
                    if done == 1:
                        timed_from = now  # the first step pays for warming up
                    elif done == 1 + PLAN_STEPS and self.planning:
                        speed = self._agreed_speed(PLAN_STEPS / max(now - timed_from, 1e-9))
                        total = self._plan_steps(speed)
                        planned = True
                    rate = done / max(elapsed, 1e-9)
                    event = TrainingEvent(
                        self.step,
                        total,
                        losses,
                        elapsed,
                        max(0, total - self.step) / rate,
                        planned=planned,
                    )
                    self.history.steps.append(self.step)
                    self.history.losses.append(losses)
                    last = self.step >= total and not self.planning
                    self._on_step(event, last)
                    for hook in hooks:
                        result = hook(self, event)
                        if result is not None:
                            event.extras[hook.name] = result
                    due = now - saved_at >= 60 * self.config.checkpoint_minutes
                    if self.step % self.config.checkpoint_every == 0 or last or due:
                        event.checkpoint = self.save()
                        saved_at, saved_step = time.perf_counter(), self.step
                    yield event
        except TrainingDiverged:
            diverged = True  # the weights are bad now: keep the last good checkpoint
            raise
        finally:
            # Cancelled, stopped by a signal or closed between checkpoints: keep the work,
            # unless a step was cut short (its state is half updated) or the loss diverged.
            if self.step > saved_step and not in_step and not diverged:
                self.save()


class Trainer(StepLoop):
    """Trains B-KinD on one or more videos of the same frame size.

    Parameters
    ----------
    videos : sequence of str, Path or VideoSource
        Training videos (or image folders).
    out_dir : str or Path
        Run folder: ``checkpoint.pt`` lives there.
    config : Config, optional
        Run settings; defaults are used when None. With ``frame_gap=None`` the gap is
        suggested from the first video.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when it exists (the config must agree).
    cache_dir : str or Path, optional
        Where frame caches go (the user cache by default).
    prepare_progress : callable, optional
        ``f(done, total, message)`` called while frame caches are built.
    distributed : bool
        Train as one rank of a ``torchrun`` job with DistributedDataParallel (see
        :mod:`bkind_model.train.distributed`): ``config.batch_size`` is the global batch.
    """

    model: BKinD

    def __init__(
        self,
        videos: Sequence[str | Path | VideoSource],
        out_dir: str | Path,
        config: Config | None = None,
        *,
        resume: bool = True,
        cache_dir: str | Path | None = None,
        prepare_progress: Callable[[int, int, str], None] | None = None,
        distributed: bool = False,
    ) -> None:
        if not videos:
            raise ConfigError("No training video given: pass at least one video file.")
        config = config or Config()
        device = resolve_device(config.device)
        self.ranks = join(device) if distributed else None
        self.device = device if self.ranks is None else self.ranks.device
        self.lock = None
        if self.ranks is None or self.ranks.leader:  # the one process that writes the run
            self.out_dir = ensure_folder(out_dir, "run folder")  # before any work
            self.lock = RunLock(self.out_dir)
        else:
            self.out_dir = Path(out_dir).absolute()
        try:
            self._build(videos, config, resume, cache_dir, prepare_progress)
        except BaseException:  # a refused resume or a cancelled caching frees the folder
            self.close()
            raise

    def _build(
        self,
        videos: Sequence[str | Path | VideoSource],
        config: Config,
        resume: bool,
        cache_dir: str | Path | None,
        prepare_progress: Callable[[int, int, str], None] | None,
    ) -> None:
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        ranks = self.ranks
        batch = config.batch_size if ranks is None else ranks.local_batch(config.batch_size)
        check_memory(config.replace(batch_size=batch), self.device)
        if (
            config.pretrained not in (None, "torch-cache", "imagenet")
            and not Path(config.pretrained).is_file()
        ):
            raise ConfigError(
                f"pretrained weights file {config.pretrained} not found; give a torchvision "
                "state dict (.pth) or 'torch-cache'."
            )
        sources = [v if isinstance(v, VideoSource) else open_video(v) for v in videos]
        sizes = {(s.height, s.width) for s in sources}
        if len(sizes) > 1:
            raise ConfigError(
                f"Training videos differ in frame size {sorted(sizes)}; train on videos of one "
                "rig (one size) per run, or crop/resize them first."
            )
        saved, refused = None, None
        if ranks is None or ranks.leader:
            try:
                saved, config = self._read_run(config, sources, resume)
            except BKindError as exc:
                if ranks is None:
                    raise
                refused = exc
        if ranks is not None:  # rank 0 measured and read; the others take its word
            config, saved, refused = ranks.share((config, saved, refused))
            if refused is not None:  # every rank stops with rank 0's message
                raise refused if ranks.leader else RefusedByRankZero(str(refused))
        self.config = config
        self.letterbox = letterbox_for(config, sizes.pop())
        self.videos: list[PreparedVideo] = self._prepare(sources, cache_dir, prepare_progress)
        if config.threads:
            cores = os.cpu_count() or 1
            if config.threads > cores:
                warnings.warn(
                    f"threads {config.threads} is more than this machine's {cores} cores; "
                    f"using {cores}.",
                    UserWarning,
                    stacklevel=2,
                )
            torch.set_num_threads(min(config.threads, cores))
        torch.manual_seed(config.seed)
        self.model = place_model(BKinD(config), self.device)
        self.objective = Objective.from_config(config)
        self.loss = None if ranks is None else distributed_loss(self.model, self.objective, ranks)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.step = 0
        self.history = History()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.pairs = self._sampler(batch, prepare_progress)
        self.batches = StepPairs(self.pairs, config.seed, 0 if ranks is None else ranks.rank)
        self._stream: Iterator[StepBatch] | None = None
        self._cancel = False
        self.stopped_by = None
        video = self.videos[0]
        self.preview_index = evenly_spaced(len(video.frames), N_PREVIEW)
        preview = video.inputs(self.preview_index)
        self.preview_offsets = preview.offsets
        background = video.pipeline.windows.background_windows(preview.offsets)
        self.monitor = ConvergenceMonitor(
            foreground_masks(preview.images, background), self.letterbox.input_size
        )
        self.preview = preview.images.to(self.device)
        if saved is not None:
            self._restore(saved)
            world_size = 1 if ranks is None else ranks.world_size
            self._note_world_size(saved.get("world_size", 1), world_size)

    # -- data -----------------------------------------------------------------------------

    def _sampler(
        self, batch: int, progress: Callable[[int, int, str], None] | None
    ) -> PairSampler:
        """Draws the pairs; with the whole encoder frozen, from pairs whose features are cached."""
        config = self.config
        if config.frozen_levels < len(self.model.encoder.strides):
            return PairSampler(self.videos, batch, config.crop_jitter)
        self.model.encoder.eval()
        return CachedPairSampler(
            self.videos,
            batch,
            config.crop_jitter,
            self.model.encoder,
            config.seed,
            self.device,
            progress,
        )

    def _prepare(
        self,
        sources: list[VideoSource],
        cache_dir: str | Path | None,
        progress: Callable[[int, int, str], None] | None,
    ) -> list[PreparedVideo]:
        """The videos at model scale; distributed, each machine's first rank caches first."""

        def prepare() -> list[PreparedVideo]:
            return [
                prepare_video(
                    s, self.letterbox, self.config, cache_dir=cache_dir, progress=progress
                )
                for s in sources
            ]

        ranks = self.ranks
        if ranks is None:
            return prepare()
        if not ranks.builds_caches:
            ranks.barrier()  # the caches are written: read them
            return prepare()
        prepared = prepare()
        ranks.barrier()
        return prepared

    def _note_world_size(self, before: int, now: int) -> None:
        """Say (on rank 0) that a run resumes on another number of processes."""
        if before != now and (self.ranks is None or self.ranks.leader):
            warnings.warn(
                f"{self.checkpoint_path}: resuming a run trained on {before} process(es) on "
                f"{now}; the global batch stays {self.config.batch_size} pairs "
                f"({self.config.batch_size // now} per process) and the weights, optimiser and "
                "schedule continue, but the pairs drawn differ from an uninterrupted run.",
                UserWarning,
                stacklevel=3,
            )

    def _read_run(
        self, config: Config, sources: list[VideoSource], resume: bool
    ) -> tuple[dict | None, Config]:
        """The checkpoint to resume (or None) and the config with its automatic values set."""
        saved = None
        if resume and self.checkpoint_path.exists():
            saved = load_checkpoint(self.checkpoint_path)
        config = self._resolve_auto(config, sources[0], saved)
        if saved is not None:
            ensure_compatible(
                checkpoint_config(saved, self.checkpoint_path), config, self.checkpoint_path
            )
            ensure_same_videos(saved, [s.path for s in sources], self.checkpoint_path)
        return saved, config

    @staticmethod
    def _resolve_auto(config: Config, source: VideoSource, saved: dict | None) -> Config:
        """Fill gap, crop, input size and a budget's steps from the checkpoint, or measure."""
        stored = saved["config"] if saved is not None else {}
        if config.minutes is not None and "steps" in stored:
            config = config.replace(steps=stored["steps"])  # planned (or planned again)
        if config.frame_gap is None:
            gap = stored.get("frame_gap")
            if gap is None:
                gap, unit = float(suggest_frame_gap(source)), "frames"
            else:
                unit = stored["gap_unit"]
            config = config.replace(frame_gap=gap, gap_unit=unit)
        if config.crop_size is None:
            crop = stored.get("crop_size")
            if crop is None:
                crop = measure_crop_size(source)
            config = config.replace(crop_size=crop)
        if config.image_size is None:
            size = stored.get("image_size")
            if size is None:
                size = auto_image_size(config, (source.height, source.width))
            config = config.replace(image_size=size)
        return config

    # -- schedule and state ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly, as saved in the checkpoint."""
        pipeline = self.videos[0].pipeline
        return {
            "config": self.config.to_dict(),
            **self._loop_state(),
            "letterbox": self.letterbox.to_dict(),
            "background": torch.from_numpy(pipeline.background.gray),
            **self._mask_state(),
            "videos": [str(Path(v.path).resolve()) for v in self.videos],
            "world_size": 1 if self.ranks is None else self.ranks.world_size,
        }

    def _mask_state(self) -> dict[str, torch.Tensor]:
        """The first video's mask background and static mask, for extraction."""
        masker = self.videos[0].pipeline.masker
        if masker is None:
            return {}
        state = {"mask_background": torch.from_numpy(masker.background)}
        if masker.static is not None:
            state["static_mask"] = torch.from_numpy(masker.static)
        return state

    def status(self) -> TrainingStatus:
        """A snapshot of the run for display (safe to pass to another thread)."""
        last = self.monitor.history[-1] if self.monitor.history else None
        return TrainingStatus(
            step=self.step,
            total_steps=self.config.steps,
            device=str(self.device),
            videos=tuple(VideoInfo(v.path, len(v.frames), v.fps, v.gap) for v in self.videos),
            keypoint_names=tuple(default_keypoint_names(self.config.n_keypoints)),
            source_size=self.letterbox.source_size,
            input_size=self.letterbox.input_size,
            preview_frames=self.preview_index.copy(),
            verdict=last.verdict if last is not None else "unchecked",
            hint=last.hint if last is not None else "",
            checkpoint=self.checkpoint_path if self.checkpoint_path.exists() else None,
        )

    # -- the loop -------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh batch; returns the loss terms."""
        self.model.train()
        drawn = self._next_batch()
        batch, turns = drawn.pairs.to(self.device), drawn.quarter_turns
        with autocast(self.device):
            if self.loss is None:
                terms = self.objective.terms(
                    self.model,
                    batch.first,
                    batch.second,
                    batch.animals,
                    self.step,
                    turns,
                    batch.features,
                )
            else:
                terms = self.loss(
                    batch.first, batch.second, batch.animals, self.step, turns, batch.features
                )
        return self._optimise(terms)

    def _next_batch(self) -> StepBatch:
        """The batch of the coming step: from DataLoader workers on CUDA, else drawn here."""
        drawn = next(self._stream) if self._stream is not None else None
        if drawn is None or drawn.step != self.step:  # the first step, or a restored one
            workers = loader_workers(self.device)
            self._stream = batch_stream(self.batches, self.step, workers, pin=workers > 0)
            drawn = next(self._stream)
        return drawn

    def _on_step(self, event: TrainingEvent, last: bool) -> None:
        """Check convergence every :data:`CHECK_EVERY` steps and on the last (rank 0)."""
        if self.ranks is not None and not self.ranks.leader:
            return
        if self.step % CHECK_EVERY == 0 or last:
            event.convergence, event.preview_keypoints = self.check_convergence()
            self.history.convergence.append(event.convergence.to_dict())

    @torch.no_grad()
    def check_convergence(self) -> tuple[ConvergenceReport, np.ndarray]:
        """Measure the convergence signals on the preview frames.

        Returns
        -------
        report : ConvergenceReport
            The signals and the verdict.
        keypoints : ndarray
            ``(N_PREVIEW, K, 2)`` preview keypoints (x, y) in source pixels.
        """
        self.model.eval()
        with autocast(self.device):
            kp = self.model.keypoints(self.preview)
        report = self.monitor.check(self.step, kp.mean.float(), kp.covariance.float())
        offsets = self.preview_offsets[:, None, :]
        return report, self.letterbox.to_source(kp.mean.float().cpu().numpy(), offsets)

    @torch.no_grad()
    def keypoints_on(self, video: int, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        """The current model's keypoints on frames of a training video.

        Call it from the training thread (a :class:`StepHook`), between steps.

        Parameters
        ----------
        video : int
            Index of the training video.
        frames : sequence of int
            Frame numbers (out-of-range ones are clipped to the video).

        Returns
        -------
        ndarray
            ``(n, K, 2)`` keypoints (x, y) in source pixels.
        """
        prepared = self.videos[video]
        index = np.clip(np.asarray(frames, dtype=int), 0, len(prepared.frames) - 1)
        inputs = prepared.inputs(index)
        self.model.eval()
        with autocast(self.device):
            kp = self.model.keypoints(inputs.images.to(self.device))
        return self.letterbox.to_source(kp.mean.float().cpu().numpy(), inputs.offsets[:, None, :])


def train(
    videos: Sequence[str | Path | VideoSource],
    out_dir: str | Path,
    config: Config | None = None,
    **kwargs: Any,
) -> Iterator[TrainingEvent]:
    """Train and yield progress events; see :class:`Trainer` for the arguments."""
    yield from Trainer(videos, out_dir, config, **kwargs).run()
