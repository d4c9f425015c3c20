"""3D benchmark: BKinD-3D on the synthetic multi-camera mouse, through the ``bkind`` CLI.

Prints one JSON line on stdout (progress goes to stderr):

1. A synthetic session (:func:`bkind_model.multiview.synthetic.write_multiview_sample`:
   3 cameras with lens distortion, ``--frames`` frames, the seed) is written to
   ``WORK/session`` unless it is there.
2. ``bkind train3d VIDEOS --calibration calibration.toml --out WORK/run --restart`` with
   the CLI's default length (its time budget) or ``--minutes`` / ``--steps``, other
   settings the defaults, extra options from ``--train-args``; in a subprocess whose
   peak resident memory is read from ``getrusage(RUSAGE_CHILDREN)``.
3. ``bkind extract3d`` and :func:`bkind_model.multiview.evaluation.evaluate_3d`: MPJPE
   (mm) after ridge regression to the 13 true joints, fitted on one half of the frames and
   tested on the other and the reverse; the centroid baseline (triangulated foreground
   centres) and the mean pose by the same code; the median reprojection error per view.

Figures: ``ratio_to_centroid`` (goal <= 0.5 within 15 min of training on a 2-core CPU),
``reprojection_px``, ``peak_rss_mb``, ``pairs_per_s`` (synchronised pairs of all views per
second of training), ``minutes`` (wall clock of ``bkind train3d``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from bkind_model.multiview.evaluation import evaluate_3d
from bkind_model.multiview.synthetic import MultiViewConfig, write_multiview_sample


def _bkind(*args: str) -> None:
    code = "import sys; from bkind_model.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=sys.stderr)


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench-work/quality3d", help="work folder")
    parser.add_argument("--frames", type=int, default=900, help="frames of the session")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic session")
    parser.add_argument("--minutes", type=float, help="training budget (default: the CLI's)")
    parser.add_argument("--steps", type=int, help="exact training steps")
    parser.add_argument("--train-args", default="", help="more `bkind train3d` options")
    args = parser.parse_args()
    work = Path(args.work)
    folder = work / f"session-{args.frames}-{args.seed}"
    if not (folder / "calibration.toml").is_file():
        write_multiview_sample(folder, MultiViewConfig(n_frames=args.frames, seed=args.seed))
    videos = sorted(str(p) for p in folder.glob("*.mp4"))
    run = work / "run"
    length = []
    if args.steps is not None:
        length = ["--steps", str(args.steps)]
    elif args.minutes is not None:
        length = ["--minutes", str(args.minutes)]
    start = time.perf_counter()
    _bkind(
        "train3d", *videos, "--calibration", str(folder / "calibration.toml"),
        "--out", str(run), "--restart", *length, *args.train_args.split(),
    )  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = run / "keypoints3d.h5"
    _bkind(
        "extract3d", str(run), *videos, "--calibration", str(folder / "calibration.toml"),
        "--out", str(out),
    )  # fmt: skip
    score = evaluate_3d(out, folder / "ground_truth_3d.h5")
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    seconds = float(state["history"]["seconds"])
    config = state["config"]
    figures = {
        "benchmark": "quality3d",
        "design": state["settings3d"]["design"],
        "views": len(videos),
        "frames": args.frames,
        "steps": int(state["step"]),
        "minutes": round(minutes, 3),
        "training_minutes": round(seconds / 60, 3),
        "pairs_per_s": round(int(state["step"]) * config["batch_size"] / seconds, 2),
        "peak_rss_mb": round(peak_mb, 1),
        **score.to_dict(),
        "config": {k: config[k] for k in ("image_size", "frame_gap", "batch_size", "steps")},
        "settings3d": state["settings3d"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
