"""Training: one loop shared by the command line and the napari plugin.

:class:`Trainer` prepares the data (frame caches at training size), builds or resumes the
model, and :meth:`Trainer.run` yields a :class:`TrainingEvent` after every step, so a
caller can draw progress, show the convergence verdict and preview keypoints, and cancel
between steps (:meth:`Trainer.cancel`). Checkpoints are written atomically every
``checkpoint_every`` steps, at the end, and when cancelled; a run resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bkind_model.checkpoint import (
    checkpoint_config,
    ensure_compatible,
    load_checkpoint,
    save_checkpoint,
)
from bkind_model.config import Config
from bkind_model.convergence import ConvergenceMonitor, ConvergenceReport, foreground_masks
from bkind_model.devices import autocast, resolve_device
from bkind_model.dissimilarity import structural_dissimilarity
from bkind_model.errors import BKindError, ConfigError
from bkind_model.frame_gap import suggest_frame_gap
from bkind_model.geometry import Letterbox
from bkind_model.io.frame_cache import FrameCache
from bkind_model.io.video import VideoSource, open_video
from bkind_model.losses import (
    equivariance_loss,
    off_animal_mass,
    reconstruction_loss,
    separation_loss,
)
from bkind_model.masks import FrameMasker, masker_for
from bkind_model.model import BKinD
from bkind_model.tracking import (
    InputWindows,
    fill_missing,
    foreground_centres,
    measure_crop_size,
    median_background,
)

N_PREVIEW = 16
CHECK_EVERY = 100  # steps between convergence checks
FOCUS_EVERY_S = 3.0  # seconds between keypoint previews of the focus frame
WARMUP_STEPS = 50


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
    focus : FocusPreview or None
        Keypoints on :attr:`Trainer.focus`, set every ``FOCUS_EVERY_S`` seconds and
        whenever the focus changed.
    checkpoint : Path or None
        Set on steps where a checkpoint was written.
    """

    step: int
    total_steps: int
    losses: dict[str, float]
    elapsed_s: float
    eta_s: float
    convergence: ConvergenceReport | None = None
    preview_keypoints: np.ndarray | None = None
    focus: FocusPreview | None = None
    checkpoint: Path | None = None


@dataclass
class FocusPreview:
    """The current model's keypoints on one frame the caller is looking at.

    Attributes
    ----------
    video : int
        Index of the training video.
    frame : int
        Frame number in that video.
    keypoints : ndarray
        ``(K, 2)`` (x, y) in source pixels.
    """

    video: int
    frame: int
    keypoints: np.ndarray


@dataclass
class TrainingVideo:
    """One video prepared for training.

    Attributes
    ----------
    path : Path
        The source video.
    frames : FrameCache
        Frames resized to ``letterbox.resized_size``, ``(N, h, w, 3)`` uint8.
    fps : float
        Frames per second of the source.
    gap : int
        Frame gap in frames for this video.
    windows : InputWindows
        Turns cached frames into model inputs (with this video's background).
    centres : ndarray
        ``(N, 2)`` animal centre of every cached frame, cached pixels.
    masker : FrameMasker or None
        Shadow and static masks at the cache's size (``config.masks``).
    """

    path: Path
    frames: FrameCache
    fps: float
    gap: int
    windows: InputWindows
    centres: np.ndarray
    masker: FrameMasker | None = None

    def inputs(
        self,
        index: np.ndarray,
        jitter: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        centres: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor | None]:
        """Model inputs of cached frames, masked as configured.

        Parameters
        ----------
        index : ndarray
            ``(B,)`` frame numbers.
        jitter : ndarray, optional
            ``(B, 2)`` window shifts, cached pixels.
        device : torch.device or str
            Where the tensors go.
        centres : ndarray, optional
            ``(B, 2)`` window centres (default: the animal in frames ``index``).

        Returns
        -------
        inputs : Tensor
            ``(B, 3, H, W)`` in [0, 1].
        offsets : ndarray
            ``(B, 2)`` window corners, cached pixels.
        animal : Tensor or None
            ``(B, 1, H, W)`` 1 on the animal, 0 on ignored pixels; None without masks.
        """
        frames = self.frames[index]
        centres = self.centres[index] if centres is None else centres
        if self.masker is None:
            inputs, offsets = self.windows.inputs(frames, centres, jitter, device)
            return inputs, offsets, None
        masked, animal = self.masker.apply(frames)
        # The animal mask travels as a fourth channel so it is cut through the same window.
        stacked = np.concatenate([masked, animal[..., None].astype(np.uint8) * 255], axis=-1)
        inputs, offsets = self.windows.inputs(stacked, centres, jitter, device)
        return inputs[:, :3], offsets, inputs[:, 3:]


@dataclass
class _History:
    steps: list[int] = field(default_factory=list)
    losses: list[dict[str, float]] = field(default_factory=list)
    convergence: list[dict] = field(default_factory=list)


def _find_animal_in(frames: np.ndarray, masker: FrameMasker | None) -> np.ndarray:
    """Frames with shadows and static clutter filled with the background, when masked."""
    return frames if masker is None else masker.filled(frames)


class Trainer:
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
    """

    def __init__(
        self,
        videos: Sequence[str | Path | VideoSource],
        out_dir: str | Path,
        config: Config | None = None,
        *,
        resume: bool = True,
        cache_dir: str | Path | None = None,
        prepare_progress: Callable[[int, int, str], None] | None = None,
    ) -> None:
        if not videos:
            raise ConfigError("No training video given: pass at least one video file.")
        self.out_dir = Path(out_dir)
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        config = config or Config()
        sources = [v if isinstance(v, VideoSource) else open_video(v) for v in videos]
        sizes = {(s.height, s.width) for s in sources}
        if len(sizes) > 1:
            raise ConfigError(
                f"Training videos differ in frame size {sorted(sizes)}; train on videos of one "
                "rig (one size) per run, or crop/resize them first."
            )
        saved = None
        if resume and self.checkpoint_path.exists():
            saved = load_checkpoint(self.checkpoint_path)
        config = self._resolve_auto(config, sources[0], saved)
        if saved is not None:
            ensure_compatible(
                checkpoint_config(saved, self.checkpoint_path), config, self.checkpoint_path
            )
        self.config = config
        size = sizes.pop()
        if config.crop_size:
            self.letterbox = Letterbox.crop(size, config.crop_size, config.image_size)
        else:
            self.letterbox = Letterbox.fit(size, config.image_size, config.input_multiple)
        self.videos = [self._prepare(s, cache_dir, prepare_progress) for s in sources]
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model = BKinD(config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.rng = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.history = _History()
        self._cancel = False
        #: ``(video index, frame)`` to preview every few seconds; set it from any thread.
        self.focus: tuple[int, int] | None = None
        video = self.videos[0]
        self.preview_index = np.linspace(0, len(video.frames) - 1, N_PREVIEW).round().astype(int)
        preview, self.preview_offsets, _ = video.inputs(self.preview_index)
        background = video.windows.background_windows(self.preview_offsets)
        self.monitor = ConvergenceMonitor(
            foreground_masks(preview, background), self.letterbox.input_size
        )
        self.preview = preview.to(self.device)
        if saved is not None:
            self._restore(saved)

    # -- data -----------------------------------------------------------------------------

    @staticmethod
    def _resolve_auto(config: Config, source: VideoSource, saved: dict | None) -> Config:
        """Fill the frame gap and crop size: from the checkpoint if resuming, else measured."""
        stored = saved["config"] if saved is not None else {}
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
        return config

    def _prepare(self, source: VideoSource, cache_dir, progress) -> TrainingVideo:
        gap = self.config.gap_frames(source.fps)
        if gap >= source.n_frames:
            raise ConfigError(
                f"{source.path}: frame gap {gap} frames is not shorter than the video "
                f"({source.n_frames} frames); choose a smaller gap."
            )
        cache = FrameCache.build(
            source, size=self.letterbox.resized_size, cache_dir=cache_dir, progress=progress
        )
        sample = np.unique(np.linspace(0, len(cache) - 1, min(100, len(cache))).astype(int))
        samples = cache[sample]
        masker = None
        if self.config.masks is not None:
            masker = masker_for(self.config.masks, samples, (source.height, source.width))
        background = median_background(samples)
        windows = InputWindows(self.letterbox, background)
        centres = np.concatenate(
            [
                foreground_centres(_find_animal_in(cache[i : i + 256], masker), background)
                for i in range(0, len(cache), 256)
            ]
        )
        height, width = self.letterbox.resized_size
        centres = fill_missing(centres, np.array([width / 2, height / 2]))
        return TrainingVideo(source.path, cache, source.fps, gap, windows, centres, masker)

    def sample_batch(
        self,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Draw ``batch_size`` frame pairs ``(t, t + gap)`` across the videos.

        Both frames of a pair are seen through the same window (the animal's position in
        frame ``t``, shifted by up to ``crop_jitter`` pixels).

        Returns
        -------
        first, second : Tensor
            Two ``(B, 3, H, W)`` batches in [0, 1] on the training device.
        animal : tuple of Tensor or None
            ``(B, 1, H, W)`` animal masks of both frames (1 on the animal); None without
            masks.
        """
        counts = torch.tensor([len(v.frames) - v.gap for v in self.videos], dtype=torch.float64)
        which = torch.multinomial(counts, self.config.batch_size, True, generator=self.rng)
        firsts, seconds, animals_first, animals_second = [], [], [], []
        jitter_px = self.config.crop_jitter
        for index, video in enumerate(self.videos):
            n = int((which == index).sum())
            if n == 0:
                continue
            starts = torch.randint(0, len(video.frames) - video.gap, (n,), generator=self.rng)
            jitter = torch.randint(-jitter_px, jitter_px + 1, (n, 2), generator=self.rng)
            t, shift = starts.numpy(), jitter.numpy()
            first, _, animal_first = video.inputs(t, shift, self.device)
            second, _, animal_second = video.inputs(
                t + video.gap, shift, self.device, centres=video.centres[t]
            )
            firsts.append(first)
            seconds.append(second)
            if animal_first is not None:
                animals_first.append(animal_first)
                animals_second.append(animal_second)
        animals = None
        if animals_first:
            animals = (torch.cat(animals_first), torch.cat(animals_second))
        return torch.cat(firsts), torch.cat(seconds), animals

    # -- schedule and state ---------------------------------------------------------------

    def _lr_factor(self, step: int) -> float:
        warm = min(1.0, (step + 1) / WARMUP_STEPS)
        progress = min(1.0, step / max(1, self.config.steps))
        return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def state(self) -> dict:
        """Everything needed to resume exactly, as saved in the checkpoint."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "letterbox": self.letterbox.to_dict(),
            "background": torch.from_numpy(self.videos[0].windows.background),
            **self._mask_state(),
            "videos": [str(v.path) for v in self.videos],
            "history": {
                "steps": self.history.steps,
                "losses": self.history.losses,
                "convergence": self.history.convergence,
            },
        }

    def _mask_state(self) -> dict:
        """The first video's mask background and static mask, for extraction."""
        masker = self.videos[0].masker
        if masker is None:
            return {}
        state = {"mask_background": torch.from_numpy(masker.background)}
        if masker.static is not None:
            state["static_mask"] = torch.from_numpy(masker.static)
        return state

    def _restore(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.rng.set_state(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        self.step = int(saved["step"])
        history = saved.get("history", {})
        self.history = _History(
            list(history.get("steps", [])),
            list(history.get("losses", [])),
            list(history.get("convergence", [])),
        )

    def save(self) -> Path:
        """Write the checkpoint now (atomically)."""
        return save_checkpoint(self.checkpoint_path, self.state())

    def cancel(self) -> None:
        """Ask :meth:`run` to stop after the current step (a checkpoint is written)."""
        self._cancel = True

    # -- the loop -------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh batch; returns the loss terms."""
        config = self.config
        self.model.train()
        a, b, animals = self.sample_batch()
        masks = config.masks
        keep = animals[0] * animals[1] if animals and masks.use == "target" else None
        late = self.step >= config.curriculum_steps
        turns = int(torch.randint(1, 4, (1,), generator=self.rng))
        with autocast(self.device):
            target = structural_dissimilarity(a, b)
            out = self.model(a, b)
            terms = {
                "reconstruction": reconstruction_loss(
                    config.reconstruction_loss, out.reconstruction.float(), target, keep
                )
            }
            if animals and masks.animal_prior > 0:
                terms["animal_prior"] = (
                    masks.animal_prior
                    * 0.5
                    * (
                        off_animal_mass(out.keypoints_a.probability.float(), animals[0])
                        + off_animal_mass(out.keypoints_b.probability.float(), animals[1])
                    )
                )
            if late and config.separation_weight > 0:
                both = torch.cat([out.keypoints_a.mean, out.keypoints_b.mean])
                terms["separation"] = config.separation_weight * separation_loss(
                    both, config.separation_sigma
                )
            if late and config.equivariance_weight > 0:
                rotated = self.model.keypoints(torch.rot90(b, turns, dims=(2, 3)))
                terms["equivariance"] = config.equivariance_weight * equivariance_loss(
                    out.keypoints_b, rotated, turns
                )
        loss = sum(terms.values())
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"{self.checkpoint_path}: the loss became {loss.item()} at step {self.step + 1}; "
                "training stopped and the last good checkpoint is kept. Lower the learning "
                "rate (lr) and resume."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {name: float(value.detach()) for name, value in terms.items()} | {
            "total": float(loss.detach())
        }

    @torch.no_grad()
    def check_convergence(self) -> tuple[ConvergenceReport, np.ndarray]:
        """Measure the convergence signals on the preview frames.

        Returns
        -------
        report : ConvergenceReport
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
        inputs, offsets, _ = prepared.inputs(index)
        self.model.eval()
        with autocast(self.device):
            kp = self.model.keypoints(inputs.to(self.device))
        return self.letterbox.to_source(kp.mean.float().cpu().numpy(), offsets[:, None, :])

    def _focus_preview(self, last: tuple[float, tuple[int, int] | None]) -> FocusPreview | None:
        """Keypoints on the focus frame if it changed or ``FOCUS_EVERY_S`` passed, else None."""
        focus = self.focus
        shown_at, shown = last
        if focus is None or (focus == shown and time.perf_counter() - shown_at < FOCUS_EVERY_S):
            return None
        video, frame = focus
        return FocusPreview(video, frame, self.keypoints_on(video, [frame])[0])

    def run(self) -> Iterator[TrainingEvent]:
        """Train until ``config.steps``, yielding an event after every step.

        Stops early, with a checkpoint, after :meth:`cancel` or when the consumer closes
        the generator.
        """
        total = self.config.steps
        start, done_at_start = time.perf_counter(), self.step
        diverged = False
        focus_shown: tuple[float, tuple[int, int] | None] = (0.0, None)
        try:
            while self.step < total and not self._cancel:
                losses = self.train_step()
                elapsed = time.perf_counter() - start
                rate = (self.step - done_at_start) / max(elapsed, 1e-9)
                event = TrainingEvent(
                    self.step, total, losses, elapsed, (total - self.step) / rate
                )
                self.history.steps.append(self.step)
                self.history.losses.append(losses)
                if self.step % CHECK_EVERY == 0 or self.step == total:
                    event.convergence, event.preview_keypoints = self.check_convergence()
                    self.history.convergence.append(event.convergence.to_dict())
                event.focus = self._focus_preview(focus_shown)
                if event.focus is not None:
                    focus_shown = (time.perf_counter(), (event.focus.video, event.focus.frame))
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    event.checkpoint = self.save()
                yield event
        except TrainingDiverged:
            diverged = True  # the weights are bad now: keep the last good checkpoint
            raise
        finally:
            unsaved = self.step % self.config.checkpoint_every and self.step != total
            if self.step > 0 and unsaved and not diverged:
                self.save()  # cancelled or closed between checkpoints: keep the work


def train(
    videos: Sequence[str | Path | VideoSource],
    out_dir: str | Path,
    config: Config | None = None,
    **kwargs,
) -> Iterator[TrainingEvent]:
    """Train and yield progress events; see :class:`Trainer` for the arguments."""
    yield from Trainer(videos, out_dir, config, **kwargs).run()
