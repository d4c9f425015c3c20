"""Training BKinD-3D on the synchronised views of a calibrated session.

:class:`Trainer3D` caches every view (:func:`~bkind_model.multiview.data.prepare_views`),
builds or resumes :class:`~bkind_model.multiview.network.BKinD3D`, and :meth:`Trainer3D.run`
yields a :class:`~bkind_model.train.loop.TrainingEvent` after every step, like the 2D
trainer, so the command line's progress and a napari worker read both the same way.
Checkpoints are atomic, written every ``checkpoint_every`` steps, every
``checkpoint_minutes``, at the end and when stopped; a run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bkind_model.config import Config, with_changes
from bkind_model.devices import autocast, resolve_device
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.frames.gap import suggest_frame_gap
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.pipeline import auto_image_size
from bkind_model.frames.windows import measure_crop_size
from bkind_model.io.atomic import ensure_folder
from bkind_model.io.checkpoint import (
    checkpoint_config,
    ensure_compatible,
    ensure_same_videos,
    load_checkpoint,
)
from bkind_model.io.lock import RunLock
from bkind_model.io.video import open_video
from bkind_model.multiview.cameras import CameraRig
from bkind_model.multiview.data import PreparedViews, check_views_agree, prepare_views
from bkind_model.multiview.extraction import checkpoint_views
from bkind_model.multiview.network import BKinD3D, ViewGeometry, square_letterbox, window_size
from bkind_model.multiview.objective import terms_3d
from bkind_model.multiview.settings import Settings3D
from bkind_model.multiview.views import Session
from bkind_model.train.loop import History, StepLoop

#: Largest gradient norm of a 3D step (the triangulation's early steps can spike).
GRADIENT_CLIP = 5.0
#: Synchronised pairs per step: with 3 views a batch of 6 is 36 images through the encoder.
DEFAULT_BATCH_3D = 6


def default_config_3d(**changes: Any) -> Config:
    """The 2D settings a 3D run starts from: a batch of synchronised pairs over all views.

    3D keeps the small encoder learnt from scratch until the pretrained one is measured
    in 3D (the 2D default since issue 22).
    """
    base = Config(batch_size=DEFAULT_BATCH_3D, encoder="small", pretrained=None, frozen_levels=0)
    return Config.from_dict(with_changes(base.to_dict(), changes))


@dataclass(frozen=True)
class Status3D:
    """A read-only snapshot of a 3D run for another thread.

    Attributes
    ----------
    step, total_steps : int
        Steps done and planned.
    device : str
        Where training runs.
    camera_names : tuple of str
        The views, in order.
    checkpoint : Path or None
        The checkpoint file, once one exists.
    """

    step: int
    total_steps: int
    device: str
    camera_names: tuple[str, ...]
    checkpoint: Path | None


class Trainer3D(StepLoop):
    """Trains BKinD-3D on one session of synchronised, calibrated videos.

    Parameters
    ----------
    session : Session
        Cameras, their videos, offsets and synchronised frame count
        (:func:`~bkind_model.multiview.views.open_session`).
    out_dir : str or Path
        Run folder (``checkpoint.pt``).
    config : Config, optional
        2D network and training settings (:func:`default_config_3d` when None); a
        ``frame_gap`` of None is measured on the first view, an ``image_size`` of None
        chosen from the largest view.
    settings : Settings3D, optional
        The 3D terms.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when it exists.
    cache_dir : str or Path, optional
        Where the frame caches go.
    prepare_progress : callable, optional
        ``f(done, total, message)`` while frames are cached.
    check_views : bool
        Refuse views that do not agree with the calibration (swapped videos, a video of
        something else: :func:`~bkind_model.multiview.data.check_views_agree`).
    """

    model: BKinD3D
    rng: torch.Generator

    def __init__(
        self,
        session: Session,
        out_dir: str | Path,
        config: Config | None = None,
        settings: Settings3D | None = None,
        *,
        resume: bool = True,
        cache_dir: str | Path | None = None,
        prepare_progress: Callable[[int, int, str], None] | None = None,
        check_views: bool = True,
    ) -> None:
        self.out_dir = ensure_folder(out_dir, "run folder")
        self.lock = RunLock(self.out_dir)
        try:
            self._build(session, config, settings, resume, cache_dir, prepare_progress)
            if check_views:
                check_views_agree(self.views, session)
        except BaseException:  # a refused resume or a cancelled caching frees the folder
            self.lock.release()
            raise

    def _build(
        self,
        session: Session,
        config: Config | None,
        settings: Settings3D | None,
        resume: bool,
        cache_dir: str | Path | None,
        prepare_progress: Callable[[int, int, str], None] | None,
    ) -> None:
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        self.session = session
        config = config or default_config_3d()
        if config.masks is not None:
            raise ConfigError(
                "3D training does not use shadow masks yet: leave the mask options out."
            )
        settings = settings or Settings3D()
        self.device = resolve_device(config.device)
        sources = [open_video(v) for v in session.videos]
        saved = None
        if resume and self.checkpoint_path.exists():
            saved = load_checkpoint(self.checkpoint_path)
            if "settings3d" not in saved:
                raise CheckpointError(
                    f"{self.checkpoint_path}: a 2D checkpoint, not a 3D run. Train 3D in "
                    "another folder (or pass --restart)."
                )
            checkpoint_views(saved, self.checkpoint_path)  # cameras and letterboxes usable
        crops = self._crop_sizes(config, sources, saved)
        config = self._resolve_auto(config, sources, crops, saved)
        if saved is not None:
            ensure_compatible(
                checkpoint_config(saved, self.checkpoint_path), config, self.checkpoint_path
            )
            ensure_same_videos(saved, list(session.videos), self.checkpoint_path)
            if Settings3D.from_dict(saved["settings3d"]) != settings:
                raise CheckpointError(
                    f"{self.checkpoint_path}: cannot resume with other 3D settings "
                    f"({saved['settings3d']} vs {settings.to_dict()}); resume with the run's "
                    "settings or start a new run folder."
                )
        self.config, self.settings, self.crop_sizes = config, settings, crops
        assert config.image_size is not None
        letterboxes = [
            Letterbox.crop(s.shape[1:3], crop, config.image_size)
            if crop
            else square_letterbox(s.shape[1:3], config.image_size)
            for s, crop in zip(sources, crops, strict=True)
        ]
        self.views: PreparedViews = prepare_views(
            sources,
            letterboxes,
            tuple(session.offsets),
            session.n_frames,
            config,
            cache_dir=cache_dir,
            progress=prepare_progress,
        )
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.geometry = ViewGeometry(list(session.cameras), letterboxes, self.device)
        self.model = BKinD3D(config, settings).to(self.device)
        if self.model.volume is not None:
            self.views.attach_track(CameraRig(list(session.cameras)))
            side = settings.volume_scale * window_size(list(session.cameras), crops)
            self.model.volume_side.fill_(side)  # a resumed run loads its own
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.step = 0
        self.history = History()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.rng = torch.Generator().manual_seed(config.seed)
        self._cancel = False
        self.stopped_by = None
        if saved is not None:
            self._restore(saved)

    @staticmethod
    def _crop_sizes(config: Config, sources: list, saved: dict | None) -> list[float]:
        """Each view's window side in source px (0: the whole frame), saved or measured.

        ``config.crop_size`` None measures the animal in every view
        (:func:`~bkind_model.frames.windows.measure_crop_size`), 0 shows whole frames, a
        number is the window of every view.
        """
        if saved is not None:  # checked by checkpoint_views
            return [float(c) for c in saved["crop_sizes"]]
        if config.crop_size is not None:
            return [float(config.crop_size)] * len(sources)
        return [measure_crop_size(s) for s in sources]

    @staticmethod
    def _resolve_auto(
        config: Config, sources: list, crops: list[float], saved: dict | None
    ) -> Config:
        """Frame gap, input size and a budget's steps: from the checkpoint, or measured."""
        stored = saved["config"] if saved is not None else {}
        if config.minutes is not None and "steps" in stored:
            config = config.replace(steps=stored["steps"])
        if config.frame_gap is None:
            gap = stored.get("frame_gap") or float(suggest_frame_gap(sources[0]))
            config = config.replace(frame_gap=gap, gap_unit=stored.get("gap_unit", "frames"))
        if config.image_size is None:
            size = stored.get("image_size") or max(
                auto_image_size(config.replace(crop_size=crop), s.shape[1:3])
                for s, crop in zip(sources, crops, strict=True)
            )
            config = config.replace(image_size=size)
        return config

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, and to extract without the training videos' caches."""
        return {
            "config": self.config.to_dict(),
            "settings3d": self.settings.to_dict(),
            **self._loop_state(),
            "letterboxes": [lb.to_dict() for lb in self.views.letterboxes],
            "crop_sizes": self.crop_sizes,
            "cameras": [c.to_dict() for c in self.session.cameras],
            "offsets": list(self.views.offsets),
            "videos": [str(Path(v).resolve()) for v in self.session.videos],
        }

    def status(self) -> Status3D:
        """A snapshot for display."""
        return Status3D(
            self.step,
            self.config.steps,
            str(self.device),
            tuple(self.session.names),
            self.checkpoint_path if self.checkpoint_path.exists() else None,
        )

    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh batch of synchronised pairs; the loss terms."""
        self.model.train()
        first, second = self.views.sample_pairs(
            self.config.batch_size, self.rng, self.config.crop_jitter, self.device
        )
        with autocast(self.device):
            terms = terms_3d(
                self.model,
                first,
                second,
                self.geometry,
                self.settings,
                self.config.reconstruction_loss,
                self.step,
            )
        return self._optimise(terms, clip_norm=GRADIENT_CLIP)

    @torch.no_grad()
    def keypoints_3d(self, t: np.ndarray) -> np.ndarray:
        """The current model's 3D keypoints ``(n, K, 3)`` on synchronised frames ``t``."""
        self.model.eval()
        inputs = self.views.inputs(t, self.device)
        views, _ = self.model.views(inputs.images, inputs.offsets, self.geometry, inputs.centres)
        return views.points.float().cpu().numpy()
