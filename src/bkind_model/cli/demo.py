"""The README's main job: discover keypoints on the bundled synthetic sample, end to end.

Writes a synthetic training video and a held-out one, trains from scratch, extracts
keypoints on the held-out video, scores them against its ground truth (and against the
blob baseline), and draws them: ``overlay.png`` (a few frames) and ``overlay.mp4``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bkind_model.cli.progress import run_extraction, run_training
from bkind_model.config import Config
from bkind_model.evaluate.regression import evaluate_results
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.atomic import atomic_path
from bkind_model.io.overlay import draw_keypoints, write_overlay_video
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from bkind_model.synthetic import SyntheticConfig, ground_truth_path, write_sample

TRAIN_FRAMES = 3000  # 100 s at 30 fps
TEST_FRAMES = 600


def write_montage(result: KeypointResult, path: Path, n: int = 4) -> Path:
    """Save ``n`` frames with their keypoints side by side as a PNG."""
    from PIL import Image

    source = open_video(result.require_video())
    index = evenly_spaced(source.n_frames, n + 2)[1:-1]
    tiles = [draw_keypoints(source[int(i)], result.keypoints[i]) for i in index]
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.concatenate(tiles, axis=1)).save(tmp)
    return path


def run_demo(out: Path, steps: int | None = None, seed: int = 0) -> dict:
    """Run the whole job and return a summary (also saved as ``summary.json``).

    Parameters
    ----------
    out : Path
        Output folder.
    steps : int, optional
        Training steps (the default config's when None).
    seed : int
        Seed of the sample videos and of training.
    """
    out.mkdir(parents=True, exist_ok=True)
    train_video, test_video = out / "synthetic_train.mp4", out / "synthetic_test.mp4"
    for path, n_frames, video_seed in (
        (train_video, TRAIN_FRAMES, seed),
        (test_video, TEST_FRAMES, seed + 1),
    ):
        if not path.exists() or not ground_truth_path(path).exists():
            print(f"Writing {path} ({n_frames} frames) ...", file=sys.stderr)
            write_sample(
                path, SyntheticConfig(n_frames=n_frames, seed=video_seed), keep_frames=False
            )
    config = Config(seed=seed)
    if steps is not None:
        config = config.replace(steps=steps)
    checkpoint = run_training([train_video], out / "run", config)
    results = run_extraction(checkpoint, test_video, out / "synthetic_test.bkind.h5")
    scores = evaluate_results(results, ground_truth_path(test_video))
    result = KeypointResult.load(results)
    montage = write_montage(result, out / "overlay.png")
    video = write_overlay_video(result, out / "overlay.mp4", overwrite=True)
    summary = {
        "checkpoint": str(checkpoint),
        "results": str(results),
        "overlay_png": str(montage),
        "overlay_mp4": str(video),
        "error_px": scores["keypoints"]["error_px"],
        "blob_error_px": scores["blob"]["error_px"],
        "mean_pose_error_px": scores["mean_pose"]["error_px"],
        "ratio_to_blob": scores["ratio_to_blob"],
        "body_length_px": scores["body_length_px"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
