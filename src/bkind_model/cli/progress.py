"""Training and extraction with progress bars on the terminal (tqdm), for the CLI and demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from bkind_model.config import Config


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
    bar = tqdm(total=config.steps, initial=trainer.step, unit="step", file=sys.stderr)
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
        if bar is None:
            bar = tqdm(total=progress.n_frames, unit="frame", file=sys.stderr)
        bar.n = progress.frames_done
        bar.refresh()
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
        if bar is None:
            bar = tqdm(total=total, unit="frame", file=sys.stderr)
        bar.n = done
        bar.refresh()

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
