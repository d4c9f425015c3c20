"""Shadow-robust discovery: keypoints on shadows without and with masks. Prints one JSON line.

On the synthetic generator with a cast shadow (train seed 0, 3000 frames; held-out seed
101, 600 frames, both 256x256), one run of the default config (300 steps) per masking:

* ``none``: no masks;
* ``colour``: HSV range on the dark animal (value <= 0.38), others filled with the background;
* ``background_fill`` / ``background_black`` / ``background_target``: the background
  model's shadows filled with the background, set to black, or dropped from the target;
* ``*_prior``: the same with the animal prior drawing idle keypoints onto the animal
  (weight ``--prior``, default 0.01).

For each: ``on_shadow`` (share of all discovered keypoint positions of the held-out video
that lie on true shadow pixels and not on the animal), ``on_animal`` and the regression
error against the true joints (``ratio_to_blob``, 2 folds). ``background_s``: seconds to
build the background model of the shared open-field video (60 frames sampled across its
2330, full 640x480 resolution), median of 3, when the video is present.

Usage: ``python bench/shadows.py [--steps N] [--only none,background_fill]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bkind_model.config import Config, MaskSettings
from bkind_model.evaluate.regression import evaluate_results
from bkind_model.frames.background import median_background
from bkind_model.frames.sampling import sample_frames
from bkind_model.infer.extraction import extract_to_result
from bkind_model.io.video import open_video
from bkind_model.synthetic import SyntheticConfig, ground_truth_path, write_sample
from bkind_model.train.loop import Trainer

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared/data/dlc_openfield/videos/m3v1mp4.mp4"
MASKINGS = {
    "none": None,
    "colour": MaskSettings(method="colour", value=(0.0, 0.38), animal_prior=0.0),
    "background_fill": MaskSettings(use="fill", animal_prior=0.0),
    "background_black": MaskSettings(use="black", animal_prior=0.0),
    "background_target": MaskSettings(use="target", animal_prior=0.0),
    "background_fill_prior": MaskSettings(use="fill", animal_prior=0.01),
    "background_target_prior": MaskSettings(use="target", animal_prior=0.01),
}


def on_masks(keypoints: np.ndarray, animal: np.ndarray, shadow: np.ndarray) -> tuple[float, float]:
    """Shares of keypoints on shadow-not-animal pixels and on animal pixels.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) px.
    animal, shadow : ndarray
        ``(T, H, W)`` bool true masks.
    """
    n_frames, height, width = animal.shape
    x = np.clip(np.round(keypoints[..., 0]).astype(int), 0, width - 1)
    y = np.clip(np.round(keypoints[..., 1]).astype(int), 0, height - 1)
    t = np.arange(n_frames)[:, None]
    on_animal = animal[t, y, x]
    on_shadow = shadow[t, y, x] & ~on_animal
    return float(on_shadow.mean()), float(on_animal.mean())


def background_seconds(repeats: int = 3) -> float | None:
    """Median seconds to sample the open-field video and build its background model."""
    if not SHARED_VIDEO.exists():
        return None
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        with open_video(SHARED_VIDEO) as source:
            median_background(sample_frames(source, 60))
        times.append(time.perf_counter() - begin)
    return round(float(np.median(times)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=Config().steps)
    parser.add_argument("--only", default=",".join(MASKINGS))
    parser.add_argument("--prior", type=float, default=0.01, help="animal prior weight")
    args = parser.parse_args()
    out: dict = {"steps": args.steps, "prior": args.prior, "background_s": background_seconds()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train = folder / "train.mp4"
        write_sample(train, SyntheticConfig(n_frames=3000, seed=0, shadow=True), keep_frames=False)
        test = folder / "test.mp4"
        truth = write_sample(test, SyntheticConfig(n_frames=600, seed=101, shadow=True))
        for name in args.only.split(","):
            masks = MASKINGS[name]
            if masks is not None and name.endswith("_prior"):
                masks = dataclasses.replace(masks, animal_prior=args.prior)
            config = Config(steps=args.steps, masks=masks)
            begin = time.perf_counter()
            trainer = Trainer([train], folder / name, config, resume=False)
            for _ in trainer.run():
                pass
            result = extract_to_result(trainer.checkpoint_path, test, folder / f"{name}.h5")
            shadow, animal = on_masks(result.keypoints, truth.animal_mask, truth.shadow_mask)
            scores = evaluate_results(result, ground_truth_path(test))
            out[name] = {
                "on_shadow": round(shadow, 4),
                "on_animal": round(animal, 4),
                "ratio_to_blob": round(scores["ratio_to_blob"], 3),
                "error_px": round(scores["keypoints"]["error_px"], 2),
                "train_s": round(time.perf_counter() - begin, 1),
            }
            print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
