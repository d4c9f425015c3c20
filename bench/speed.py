"""Training and extraction speed. Prints one JSON line.

Training: pairs per second and peak resident memory at the default config, and at the
original method's settings (ResNet-50, 256 px) for comparison. Extraction: frames per
second from the mp4, decoding included, on the shared open-field video (640x480) or a
synthetic 640x480 video when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared/data/dlc_openfield/videos/m3v1mp4.mp4"

# Run in a fresh interpreter so each measurement's peak memory is its own.
CHILD = """
import json, resource, sys, time
from pathlib import Path
from bkind_model.config import Config
from bkind_model.train.loop import Trainer
from bkind_model.infer.extraction import extract
mode, video, out, overrides = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
limit = overrides.pop("extract_frames", None)
config = Config(**overrides)
if mode == "train":
    trainer = Trainer([video], out, config.replace(steps=config.steps), resume=False)
    times = []
    for event in trainer.run():
        times.append(time.perf_counter())
    rates = [config.batch_size / (b - a) for a, b in zip(times[4:], times[5:])]
    rates.sort()
    print(json.dumps({"pairs_per_s": rates[len(rates) // 2],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
else:
    trainer = Trainer([video], out, config.replace(steps=1), resume=False)
    for _ in trainer.run():
        pass
    start = time.perf_counter()
    n = 0
    for progress in extract(trainer.checkpoint_path, video, out / "r.h5", batch_size=64):
        n = progress.frames_done
        if limit and n >= limit:
            break
    print(json.dumps({"frames_per_s": n / (time.perf_counter() - start),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(mode: str, video: Path, overrides: dict) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", CHILD, mode, str(video), out, json.dumps(overrides)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--steps", type=int, default=25, help="training steps to time")
    parser.add_argument("--skip-original", action="store_true", help="skip ResNet-50 at 256 px")
    args = parser.parse_args()
    video = args.video
    if not video.exists():
        from bkind_model.synthetic import SyntheticConfig, write_sample

        video = Path(tempfile.mkdtemp()) / "synthetic640.mp4"
        write_sample(
            video, SyntheticConfig(height=480, width=640, n_frames=600), keep_frames=False
        )
    default = {"steps": args.steps, "frame_gap": 6}
    # The original's settings are slow: time fewer steps and the first 640 frames.
    original = default | {
        "encoder": "resnet50",
        "image_size": 256,
        "crop_size": 0,
        "steps": 8,
        "extract_frames": 640,
    }
    result = {
        "benchmark": "speed",
        "video": str(video),
        "train_default": measure("train", video, default),
        "extract_default": measure("extract", video, default),
    }
    if not args.skip_original:
        result["train_original_settings"] = measure("train", video, original)
        result["extract_original_settings"] = measure("extract", video, original)
    result["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
