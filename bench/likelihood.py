"""What the likelihood in our exports says: saturated before, calibrated now.

For results of whole videos (consecutive frames), prints one JSON line per results file:

* ``below_0.6`` per keypoint, for three likelihoods: ``one_minus_inverse`` (the old
  ``1 - 1 / confidence``), ``peak_probability`` (the softmaxed heatmap's peak) and
  ``calibrated`` (:mod:`bkind_model.pose.likelihood`, what files hold now): the share of
  points that the field's usual 0.6 cut-off (DeepLabCut's pcutoff, movement's
  ``filter_by_confidence``) would drop;
* ``calibration``: the calibrated likelihood fitted on the first half of the frames and
  tested on the second: expected calibration error (0 is perfect), ROC AUC against
  stability, the share of stable points;
* ``rigidity``: how closely each keypoint keeps its place on the body (1: on the body);
* ``seconds``: time of one calibration;
* ``on_animal`` (when the video is found), a check by other means: on ``ON_ANIMAL_FRAMES``
  evenly spaced frames, whether each keypoint lies on the animal's foreground (gray
  level more than 0.1 from the median background, opened, dilated by 5% of the animal's
  length), as ``bench/real.py`` measures it; ``per_keypoint`` shares, the share on the
  animal of points below and above 0.6, and the ROC AUC of each likelihood against being
  on the animal.

Usage: ``python bench/likelihood.py RESULTS.h5 [...]`` or ``--extract RUN VIDEO OUT.h5``
(extract a whole video first, with ``bkind extract``'s code).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bkind_model.io.results import KeypointResult, heatmap_cells
from bkind_model.pose.body_frame import body_frame
from bkind_model.pose.likelihood import (
    calibrated_likelihood,
    calibration_report,
    peak_probability,
)

ON_ANIMAL_FRAMES = 300


def _auc(target: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    keep = np.isfinite(score)
    if len(np.unique(target[keep])) < 2:
        return None
    return round(float(roc_auc_score(target[keep], score[keep])), 4)


def on_animal(result: KeypointResult, likelihoods: dict[str, np.ndarray]) -> dict | None:
    """Keypoints on the foreground of evenly spaced frames, against each likelihood."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bkind_model.frames.sampling import evenly_spaced
    from bkind_model.io.video import open_video
    from bkind_model.pose.likelihood import stability
    from real import foreground, inside_masks

    video = result.video_path
    if video is None or not video.exists():
        return None
    source = open_video(video)
    frames = evenly_spaced(min(source.n_frames, result.n_frames), ON_ANIMAL_FRAMES)
    images = source[frames]
    length = stability(result.keypoints, result.confidence).length
    no_joints = np.zeros((len(frames), 0, 2))
    fg = foreground(images, video, no_joints, np.zeros(0, int), 0.05 * length)
    inside = inside_masks(fg.masks, result.keypoints[frames])
    figures: dict = {
        "frames": len(frames),
        "per_keypoint": [round(float(v), 3) for v in inside.mean(axis=0)],
        "mask_area": round(fg.area, 4),
    }
    for name, values in likelihoods.items():
        sampled = values[frames]
        low = sampled < 0.6
        figures[name] = {
            "auc": _auc(inside.reshape(-1), sampled.reshape(-1)),
            "on_animal_below_0.6": round(float(inside[low].mean()), 4) if low.any() else None,
            "on_animal_above_0.6": round(float(inside[~low].mean()), 4) if (~low).any() else None,
        }
    return figures


def _below(values: np.ndarray) -> list[float]:
    return [round(float(np.mean(values[:, k] < 0.6)), 4) for k in range(values.shape[1])]


def measure(path: Path) -> dict:
    """The figures of one results file."""
    result = KeypointResult.load(path)
    cells = heatmap_cells(result.metadata.get("config") or {})
    start = time.perf_counter()
    calibrated = calibrated_likelihood(
        result.keypoints,
        result.confidence,
        result.covariance,
        n_cells=cells,
        on_animal=result.on_animal,
    )
    seconds = time.perf_counter() - start
    with np.errstate(divide="ignore"):
        old = np.clip(1.0 - 1.0 / result.confidence, 0.0, 1.0)
    report = calibration_report(
        result.keypoints, result.confidence, result.covariance, result.on_animal
    )
    rigidity = body_frame(result.keypoints, result.confidence).rigidity
    peak = peak_probability(result.confidence, cells)
    checked = on_animal(result, {"peak_probability": peak, "calibrated": calibrated})
    return {
        "benchmark": "likelihood",
        "results": str(path),
        "frames": result.n_frames,
        "on_animal_at_extraction": None
        if result.on_animal is None
        else [round(float(v), 3) for v in result.on_animal.mean(axis=0)],
        "keypoints": result.n_keypoints,
        "below_0.6": {
            "one_minus_inverse": _below(old),
            "peak_probability": _below(peak),
            "calibrated": _below(calibrated),
        },
        "median_likelihood": {
            "one_minus_inverse": round(float(np.median(old)), 4),
            "calibrated": round(float(np.nanmedian(calibrated)), 4),
        },
        "calibration": report.to_dict(),
        "rigidity": [round(float(r), 3) for r in rigidity],
        "seconds": round(seconds, 2),
        "on_animal": checked,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, help="results .h5 of whole videos")
    parser.add_argument(
        "--extract",
        nargs=3,
        metavar=("RUN", "VIDEO", "OUT"),
        action="append",
        default=[],
        help="extract VIDEO with the checkpoint in RUN to OUT first (repeatable)",
    )
    args = parser.parse_args(argv)
    paths = list(args.results)
    for run, video, out in args.extract:
        from bkind_model.infer.extraction import extract_to_result

        if not Path(out).exists():
            print(f"[likelihood] extracting {video}", file=sys.stderr, flush=True)
            extract_to_result(Path(run), Path(video), Path(out))
        paths.append(Path(out))
    if not paths:
        parser.error("give results files or --extract RUN VIDEO OUT")
    for path in paths:
        print(json.dumps(measure(path)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
