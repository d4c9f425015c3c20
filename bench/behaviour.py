"""Behaviour benchmark: ethograms from labels and motifs without labels, end to end.

Writes synthetic training and held-out videos (different seeds), trains B-KinD once on the
training videos with the demo's settings, extracts keypoints on every video, then:

- classifier: trained on the training videos' discovered keypoints with the generator's
  behaviour states (walk, turn, rear, groom, rest) as labels, scored on the held-out
  videos: per-behaviour F1 and macro F1;
- motifs: fitted without labels on all videos' discovered keypoints, matched to the states
  (Hungarian, on the held-out frames) and scored the same way, plus the adjusted Rand index;
- the same figures with the ground-truth joints instead of discovered keypoints, as an
  upper reference.

``--work DIR`` keeps the videos, the run and the results there and reuses them (default: a
temporary folder; a run already there is reused whatever ``--steps``). ``--ideas`` also
measures classifier and motif variants. Prints one JSON line on stdout; progress goes to
stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, f1_score

from bkind_model.behaviour.classifier import ClassifierSettings, train_classifier
from bkind_model.behaviour.labels import BehaviourLabels, video_key
from bkind_model.behaviour.motifs import MotifSettings, find_motifs
from bkind_model.behaviour.synthetic import ground_truth_labels, ground_truth_result
from bkind_model.cli.progress import run_extraction, run_training
from bkind_model.config import Config
from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import (
    BEHAVIOUR_NAMES,
    SyntheticConfig,
    ground_truth_path,
    load_ground_truth,
    write_sample,
)

TRAIN_SEEDS = (0, 1)
HELD_OUT_SEEDS = (101, 102)
N_FRAMES = 3000  # 100 s at 30 fps per video
GOAL_MACRO_F1 = 0.8
#: Classifier variants measured with ``--ideas`` (the default settings first).
IDEAS = {
    "default (window 1 s, smoothing 0.5 s, heatmap shape, logistic)": ClassifierSettings(),
    "without heatmap shape": ClassifierSettings(heatmap_shape=False),
    "smoothing 0.2 s": ClassifierSettings(smooth_s=0.2),
    "no smoothing": ClassifierSettings(smooth_s=0.0),
    "window 0.5 s": ClassifierSettings(window_s=0.5),
    "window 2 s": ClassifierSettings(window_s=2.0),
    "gradient boosting": ClassifierSettings(estimator="boosting"),
}
#: Motif variants measured with ``--ideas`` (one motif per state; the default first).
MOTIF_IDEAS = {
    "default (window 1 s, heatmap shape)": MotifSettings(n_motifs=len(BEHAVIOUR_NAMES)),
    "without heatmap shape": MotifSettings(n_motifs=len(BEHAVIOUR_NAMES), heatmap_shape=False),
    "window 0.25 s": MotifSettings(n_motifs=len(BEHAVIOUR_NAMES), window_s=0.25),
    "window 2 s": MotifSettings(n_motifs=len(BEHAVIOUR_NAMES), window_s=2.0),
}


def prepare(work: Path, steps: int | None) -> tuple[list[Path], list[Path]]:
    """Videos, one B-KinD run and results files of every video (reused when present).

    Returns the results files of the training and of the held-out videos.
    """
    work.mkdir(parents=True, exist_ok=True)
    videos = {seed: work / f"synthetic_{seed}.mp4" for seed in TRAIN_SEEDS + HELD_OUT_SEEDS}
    for seed, path in videos.items():
        if not path.exists() or not ground_truth_path(path).exists():
            print(f"Writing {path} ...", file=sys.stderr)
            write_sample(
                path,
                SyntheticConfig(n_frames=N_FRAMES, seed=seed),
                keep_frames=False,
                with_masks=False,
            )
    config = Config(seed=0) if steps is None else Config(seed=0, steps=steps)
    checkpoint = work / "run" / "checkpoint.pt"
    if not checkpoint.exists():
        checkpoint = run_training([videos[s] for s in TRAIN_SEEDS], work / "run", config)
    results = {}
    for seed, video in videos.items():
        out = video.with_suffix(".bkind.h5")
        results[seed] = out if out.exists() else run_extraction(checkpoint, video, out)
    return [results[s] for s in TRAIN_SEEDS], [results[s] for s in HELD_OUT_SEEDS]


def _truth(result: KeypointResult) -> np.ndarray:
    """``(T,)`` generator states of a result's synthetic video."""
    return load_ground_truth(result.require_video()).behaviour[:, 0].astype(int)


def _scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Per-behaviour F1 and macro F1 over the five states."""
    labels = list(range(len(BEHAVIOUR_NAMES)))
    per = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {
        "f1": {n: round(float(f), 3) for n, f in zip(BEHAVIOUR_NAMES, per, strict=True)},
        "macro_f1": round(float(per.mean()), 3),
    }


def classifier_scores(
    train: list[KeypointResult], held_out: list[KeypointResult], settings: ClassifierSettings
) -> dict:
    """Train on the training videos' states, score on the held-out videos."""
    parts = [ground_truth_labels(r.require_video()) for r in train]
    labels = BehaviourLabels(parts[0].names, [i for p in parts for i in p.intervals])
    start = time.perf_counter()
    model = train_classifier(train, labels, settings)
    trained_s = time.perf_counter() - start
    predicted = np.concatenate([model.predict(r).codes for r in held_out])
    truth = np.concatenate([_truth(r) for r in held_out])
    return _scores(truth, predicted) | {"train_s": round(trained_s, 1)}


def motif_scores(
    train: list[KeypointResult], held_out: list[KeypointResult], settings: MotifSettings
) -> dict:
    """Motifs found in all videos, matched to the states on the held-out ones."""
    start = time.perf_counter()
    ethograms = {e.video: e for e in find_motifs(train + held_out, settings)}
    fitted_s = time.perf_counter() - start
    codes = np.concatenate([ethograms[video_key(r)].codes for r in held_out])
    truth = np.concatenate([_truth(r) for r in held_out])
    overlap = np.zeros((settings.n_motifs, len(BEHAVIOUR_NAMES)))
    np.add.at(overlap, (codes, truth), 1)
    motifs, states = linear_sum_assignment(-overlap)  # Hungarian: most frames agreeing
    state_of = np.full(settings.n_motifs, -1)
    state_of[motifs] = states
    return _scores(truth, state_of[codes]) | {
        "adjusted_rand": round(float(adjusted_rand_score(truth, codes)), 3),
        "fit_s": round(fitted_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder kept and reused (default: temporary)")
    parser.add_argument("--steps", type=int, default=None, help="B-KinD steps (demo: 300)")
    parser.add_argument("--ideas", action="store_true", help="also measure classifier variants")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        train_files, held_out_files = prepare(work, args.steps)
        discovered = (
            [KeypointResult.load(p) for p in train_files],
            [KeypointResult.load(p) for p in held_out_files],
        )
        joints = tuple(
            [ground_truth_result(r.require_video()) for r in group] for group in discovered
        )
        print("Scoring ...", file=sys.stderr)
        n_states = len(BEHAVIOUR_NAMES)
        report: dict = {
            "benchmark": "behaviour",
            "train_videos": len(train_files),
            "held_out_frames": sum(r.n_frames for r in discovered[1]),
            "n_keypoints": discovered[0][0].n_keypoints,
            "bkind_steps": discovered[0][0].metadata["config"]["steps"],
            "classifier": {
                "discovered": classifier_scores(*discovered, ClassifierSettings()),
                "joints": classifier_scores(*joints, ClassifierSettings()),
            },
            "motifs": {
                "discovered": motif_scores(*discovered, MotifSettings(n_motifs=n_states)),
                "joints": motif_scores(*joints, MotifSettings(n_motifs=n_states)),
            },
        }
        macro = report["classifier"]["discovered"]["macro_f1"]
        report["goal_macro_f1"] = GOAL_MACRO_F1
        report["goal_met"] = macro >= GOAL_MACRO_F1
        if args.ideas:
            report["ideas"] = {
                name: classifier_scores(*discovered, settings)["macro_f1"]
                for name, settings in IDEAS.items()
            }
            report["motif_ideas"] = {
                name: {
                    key: value
                    for key, value in motif_scores(*discovered, settings).items()
                    if key in ("macro_f1", "adjusted_rand")
                }
                for name, settings in MOTIF_IDEAS.items()
            }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
