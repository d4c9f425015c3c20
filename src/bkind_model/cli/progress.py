"""Training and extraction with progress bars on the terminal (tqdm), for the CLI and demo."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from bkind_model.config import Config


def run_training(videos, out_dir: Path, config: Config, resume: bool = True) -> Path:
    """Train with a progress bar and a convergence line; returns the checkpoint path."""
    from bkind_model.train.loop import Trainer

    def prepared(done: int, total: int, message: str) -> None:
        print(f"\r{message}: {done}/{total} frames", end="", file=sys.stderr)

    trainer = Trainer(videos, out_dir, config, resume=resume, prepare_progress=prepared)
    print(
        f"\nTraining {config.n_keypoints} keypoints at {trainer.letterbox.input_size[1]}x"
        f"{trainer.letterbox.input_size[0]} px, gap {trainer.videos[0].gap} frames, "
        f"on {trainer.device} (from step {trainer.step}).",
        file=sys.stderr,
    )
    bar = tqdm(total=config.steps, initial=trainer.step, unit="step", file=sys.stderr)
    verdict = ""
    for event in trainer.run():
        bar.update(1)
        if event.convergence is not None:
            verdict = event.convergence.verdict
        bar.set_postfix(loss=f"{event.losses['total']:.4f}", state=verdict)
    bar.close()
    if trainer.monitor.history:
        last = trainer.monitor.history[-1]
        print(f"Convergence: {last.verdict}. {last.hint}".strip(), file=sys.stderr)
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
