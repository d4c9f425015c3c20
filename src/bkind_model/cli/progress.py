"""Training and extraction with progress bars on the terminal (tqdm), for the CLI and demo.

Every bar is a :func:`progress_bar`: it shows no rate (nor time left) until it has timed
:data:`RATE_AFTER_S` seconds of work, so the first reading is never the "11671106 frame/s"
of a batch that finished just as the bar appeared.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bkind_model.config import Config

#: Seconds of work a bar times before it shows a rate and the time left.
RATE_AFTER_S = 2.0
#: The bar without rate and time left, until they mean something.
_EARLY_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class _Bar(tqdm):
    """A tqdm bar that leaves out the rate until :data:`RATE_AFTER_S` seconds are timed."""

    @property
    def format_dict(self) -> dict[str, Any]:
        values = dict(super().format_dict)
        if values["elapsed"] < RATE_AFTER_S or values["n"] <= values["initial"]:
            values["bar_format"] = _EARLY_FORMAT
        return values


def progress_bar(total: int, unit: str, *, initial: int = 0, desc: str | None = None) -> tqdm:
    """A progress bar on stderr that shows a rate only once it is measured.

    Parameters
    ----------
    total : int
        Units of the whole job (frames, steps).
    unit : str
        Their name (``"frame"``, ``"step"``).
    initial : int
        Units done before the bar starts (a resumed run); the rate counts only the later
        ones.
    desc : str, optional
        Label in front of the bar.
    """
    return _Bar(total=total, initial=initial, unit=unit, desc=desc, file=sys.stderr)


class TrainingStopped(Exception):
    """Training stopped at a step boundary on a signal; its checkpoint is saved.

    Attributes
    ----------
    signal : str
        ``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``.
    step : int
        The step saved.
    checkpoint : Path
        The checkpoint written.
    """

    def __init__(self, signal: str, step: int, checkpoint: Path) -> None:
        self.signal, self.step, self.checkpoint = signal, step, checkpoint
        super().__init__(
            f"stopped by {signal} at step {step}; the checkpoint {checkpoint} is saved: run "
            "the same command again to resume."
        )


def follower_rank(distributed: bool) -> bool:
    """Whether this process is a distributed run's rank other than 0 (which stays quiet)."""
    return distributed and os.environ.get("RANK", "0") != "0"


def run_training(
    videos, out_dir: Path, config: Config, resume: bool = True, distributed: bool = False
) -> Path:
    """Train with a progress bar and a convergence line; returns the checkpoint path.

    With ``distributed`` this process is one rank of a torchrun job; rank 0 shows the
    progress and the others train silently.
    """
    from bkind_model.train.loop import Trainer

    def prepared(done: int, total: int, message: str) -> None:
        end = "\n" if done >= total else ""  # an error after caching starts on a new line
        print(f"\r{message}: {done}/{total} frames", end=end, file=sys.stderr)

    quiet = follower_rank(distributed)
    trainer = Trainer(
        videos,
        out_dir,
        config,
        resume=resume,
        prepare_progress=None if quiet else prepared,
        distributed=distributed,
    )
    try:
        if quiet:
            for _ in trainer.run():
                pass
            if trainer.stopped_by is not None:
                raise TrainingStopped(trainer.stopped_by, trainer.step, trainer.checkpoint_path)
            return trainer.checkpoint_path
        return _train_with_bar(trainer)
    finally:
        trainer.close()


def _train_with_bar(trainer) -> Path:
    """Run a prepared trainer with a tqdm bar and a convergence line."""
    from bkind_model.train.loop import PLAN_STEPS

    config = trainer.config
    ranks = trainer.ranks
    where = str(trainer.device)
    if ranks is not None:
        where = (
            f"{ranks.world_size} processes ({trainer.device.type}, "
            f"{config.batch_size // ranks.world_size} pairs each)"
        )
    print(
        f"Training {config.n_keypoints} keypoints at {trainer.letterbox.input_size[1]}x"
        f"{trainer.letterbox.input_size[0]} px, gap {trainer.videos[0].gap} frames, "
        f"on {where} (from step {trainer.step}).",
        file=sys.stderr,
    )
    length = (
        f"a {config.minutes:g}-minute budget (its steps are set after {PLAN_STEPS} timed steps)"
        if trainer.planning
        else f"{config.steps} steps"
    )
    print(f"Training for {length}.", file=sys.stderr)
    bar = progress_bar(config.steps, "step", initial=trainer.step)
    verdict = ""
    first, timed = trainer.step, trainer.step + 1 + PLAN_STEPS
    try:
        for event in trainer.run():
            bar.update(1)
            if event.planned or event.step == timed:
                bar.total = event.total_steps
                speed = (event.step - first) / max(event.elapsed_s, 1e-9)
                bar.write(
                    f"{event.total_steps} steps at {speed:.1f} steps/s: about "
                    f"{event.eta_s / 60:.1f} min to go.",
                    file=sys.stderr,
                )
            if event.convergence is not None:
                verdict = event.convergence.verdict
            bar.set_postfix(loss=f"{event.losses['total']:.4f}", state=verdict)
    finally:
        bar.close()  # before any error message, which then gets a line of its own
    status = trainer.status()
    if status.verdict != "unchecked":
        print(f"Convergence: {status.verdict}. {status.hint}".strip(), file=sys.stderr)
    if trainer.stopped_by is not None:
        raise TrainingStopped(trainer.stopped_by, trainer.step, trainer.checkpoint_path)
    return trainer.checkpoint_path


def run_extraction(checkpoint, video, out: Path, heatmaps: bool = False) -> Path:
    """Extract with a progress bar; returns the results path."""
    from bkind_model.infer.extraction import extract

    bar = None
    path = None
    for progress in extract(checkpoint, video, out, heatmaps=heatmaps):
        if bar is None:  # from the first batch's end: the rate times the frames after it
            bar = progress_bar(progress.n_frames, "frame", initial=progress.frames_done)
        bar.update(progress.frames_done - bar.n)
        path = progress.path
    if bar is not None:
        bar.close()
    if path is None:  # extract always ends with the finished file
        raise RuntimeError("extraction ended without a results file")
    return path


def run_many_extractions(
    checkpoint, videos: list[Path], outs: list[Path], client, workers, chunk_frames: int
) -> list[Path]:
    """:func:`~bkind_model.infer.cluster.extract_many` with one bar over all frames."""
    from bkind_model.infer.cluster import extract_many

    bar = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # frames finished earlier are not timed
            bar = progress_bar(total, "frame", initial=done)
        bar.update(done - bar.n)

    try:
        return extract_many(
            checkpoint,
            videos,
            outs,
            client=client,
            workers=workers,
            chunk_frames=chunk_frames,
            progress=report,
        )
    finally:
        if bar is not None:
            bar.close()
