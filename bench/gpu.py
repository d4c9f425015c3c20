"""Training pairs/s and extraction frames/s on a CUDA GPU; skips cleanly without one.

Runs ``bench/speed.py``'s measurements (a fresh interpreter per measurement; the median
pairs/s over the timed steps; extraction from the mp4 with decoding included) with
``device="cuda"`` (bf16 autocast) at the default input, with the default batch and with
``--batch`` pairs per step, and prints one JSON line. Without CUDA it prints
``{"benchmark": "gpu", "skipped": "..."}`` and exits 0. Goals (issue 14): >= 1,000
training pairs/s and >= 2,000 extracted frames/s on one H100-class GPU.
``bench/flops.py`` gives the roofline ceilings these are compared with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import SHARED_VIDEO, measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--steps", type=int, default=60, help="training steps to time")
    parser.add_argument("--batch", type=int, default=128, help="pairs per step, second run")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu", "skipped": "no CUDA GPU on this machine"}))
        return 0
    if not args.video.exists():
        print(json.dumps({"benchmark": "gpu", "skipped": f"{args.video} not found"}))
        return 0
    default = {"steps": args.steps, "frame_gap": 6, "device": "cuda", "image_size": 128}
    print(
        json.dumps(
            {
                "benchmark": "gpu",
                "gpu": torch.cuda.get_device_name(0),
                "video": str(args.video),
                "train_default_batch": measure("train", args.video, default),
                f"train_batch_{args.batch}": measure(
                    "train", args.video, default | {"batch_size": args.batch}
                ),
                "extract": measure("extract", args.video, default),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
