"""Few-labels benchmark: named bodyparts from 5 to all labelled frames of one half.

On each shared labelled set (``bench/real.py``'s ``openfield`` and ``mirror``), the
discovered keypoints of the labelled images (``bkind extract`` of the last snapshot of a
``real.py`` run) are mapped to the hand-labelled bodyparts with
:func:`bkind_model.naming.mapping.fit_map` fitted on ``n`` labelled images and scored on
the held-out ones.

Protocol
--------
The labelled images are split in halves in label order (as ``real.py`` evaluates). For
each ``n`` of ``--n-labels`` (default 5, 10, 20, 40 and all of a half) and each of
``--draws`` random draws, ``n`` images are drawn from one half (the halves alternate
between draws) and the map is scored on every image of the other half: mean Euclidean
error over the labelled (image, bodypart) cells, px and body lengths (``real.py``'s body
axis). Figures are the median over the draws. With the same labelled images:

``mapping``
    the map as ``bkind name`` fits it (:func:`~bkind_model.naming.mapping.fit_best_map`:
    of the default features and of no body frame at all, the one of least
    leave-one-out error on the labelled images);
``default_features``
    the default features alone (:data:`~bkind_model.naming.mapping.DEFAULT_FEATURES`:
    body frame on the blob, keypoints and the blob's description as features);
``keypoints_only``
    the Procrustes body frame of the discovered keypoints and the keypoints alone;
``uncertainty``, ``blob_features``
    that, with the keypoints' confidence and covariance, or the blob's description,
    added to the features;
``blob_frame``
    the keypoints alone in the body frame placed on the blob (centroid and major axis,
    the head-tail sign from the keypoints);
``fusion``
    the default map combined with the blob baseline by inverse covariance, frame by
    frame;
``image_ridge``
    the ridge of ``bkind evaluate`` on the keypoints in image coordinates (no body frame);
``blob``
    the blob baseline: ridge on the blob tracker's features (image coordinates);
``proposed``
    the default map fitted on the ``n`` images :func:`~bkind_model.naming.proposal.propose_frames`
    picks from the half (one deterministic choice per half, the median of both halves).
Every ridge chooses its penalty by leave-one-out over the labelled images
(:func:`~bkind_model.naming.mapping.fit_ridge`). ``likelihood`` checks the stated
likelihood at ``--calibration-n`` labels (the random draws): the mean likelihood of the
held-out predictions against the share of them within the likelihood's radius (0.1 body
length).

For ``mirror`` the obstacle points (``obs*``) are left out: they are not bodyparts.

Output: one JSON line per dataset (``benchmark`` "few_labels", ``dataset``, ``results``,
``n_images``, ``body_length_px``, ``bodyparts``, ``draws``, ``curve``: per ``n_labels``
each method's ``error_px`` and ``error_body_lengths``, ``likelihood``, ``goal`` (openfield:
<= 0.1 body lengths at 20 labels), ``png``, ``runtime_s``) and
``bench/results/few_labels_<dataset>.png``, the learning curves. A dataset whose shared
files are absent gives ``skipped``.

Usage: ``python bench/few_labels.py [--dataset openfield|mirror|all] [--work DIR]
[--steps N] [--draws D] [--n-labels 5 10 20 40 0] [--out DIR]``. ``--work`` is a
``real.py --work`` folder: the last ``WORK/<dataset>/stepNNNNNNN.h5`` there is reused, or
the newest checkpoint a running ``real.py`` copied (extracted on the labelled images);
without either, ``real.py``'s training (``--steps``, default 900) and extraction run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real  # bench/real.py: the datasets, their training and extraction

#: Labelled images per fit; 0 stands for all of one half.
N_LABELS = (5, 10, 20, 40, 0)
#: The curves of the PNG, the default map first.
METHODS = (
    "mapping",
    "default_features",
    "proposed",
    "keypoints_only",
    "uncertainty",
    "blob_features",
    "blob_frame",
    "fusion",
    "image_ridge",
    "blob",
)
GOAL = {"dataset": "openfield", "n_labels": 20, "body_lengths": 0.1}


def discovered_keypoints(dataset: real.Dataset, args: argparse.Namespace, work: Path) -> Path:
    """The results of the labelled images, reused from ``work`` when there.

    In order: the last ``stepNNNNNNN.h5`` of a finished ``real.py`` run; else the newest
    checkpoint copy of a running one (``run-snapshots/``), extracted on the labelled
    images; else ``real.py``'s training (``--steps``) and extraction.
    """
    from bkind_model.io.checkpoint import load_checkpoint
    from bkind_model.io.labels import load_labels

    found = sorted(work.glob("step*.h5"))
    if found:
        return found[-1]
    linked = work / "labelled"
    if not linked.is_dir():
        labels = load_labels(dataset.labels, body_axis=dataset.body_axis)
        real.link_labelled(labels.frames, dataset.folder, linked)
    copies = sorted((work / "run-snapshots").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    if copies:
        snapshot = copies[-1]
    else:
        length = argparse.Namespace(steps=args.steps, quick=False, minutes=None, stages=1)
        snapshots, _, _ = real.train(
            dataset.video, work / "run", real.training_length(length)[0], []
        )
        snapshot = snapshots[-1].path
    out = work / f"few_labels_step{int(load_checkpoint(snapshot)['step']):07d}.h5"
    if not out.is_file():
        real.extract(snapshot, linked, out)
    return out


def _score(predicted: np.ndarray, joints: np.ndarray) -> float:
    """Mean Euclidean error over the labelled cells of ``(N, J, 2)`` arrays, px."""
    errors = np.linalg.norm(predicted - joints, axis=-1)
    return float(np.nanmean(errors))


def image_ridge(x: np.ndarray, joints: np.ndarray, train: np.ndarray, test: np.ndarray):
    """Held-out predictions of a ridge per bodypart on ``(N, F)`` image-space features."""
    from bkind_model.evaluate.regression import ridge_predict
    from bkind_model.naming.mapping import fit_ridge

    predicted = np.full((len(test), joints.shape[1], 2), np.nan)
    for j in range(joints.shape[1]):
        rows = train[np.isfinite(joints[train, j]).all(axis=1)]
        if len(rows) >= 2:
            predicted[:, j] = ridge_predict(fit_ridge(x[rows], joints[rows, j]).weights, x[test])
    return predicted


def run_dataset(dataset: real.Dataset, args: argparse.Namespace, work_root: Path) -> dict:
    from bkind_model.evaluate.baselines import blob_features_of_video
    from bkind_model.evaluate.regression import keypoint_features
    from bkind_model.io.labels import labels_from_joints, load_labels
    from bkind_model.io.results import KeypointResult
    from bkind_model.io.video import open_video
    from bkind_model.naming.bodyparts import Bodyparts
    from bkind_model.naming.features import KEYPOINTS_ONLY, FeatureSet
    from bkind_model.naming.mapping import (
        DEFAULT_FEATURES,
        LIKELIHOOD_RADIUS,
        MIN_FRAMES,
        fit_best_map,
        fit_map,
    )
    from bkind_model.naming.proposal import propose_frames

    began = time.perf_counter()
    head = {"benchmark": "few_labels", "dataset": dataset.name}
    reason = real.missing(dataset)
    if reason:
        return head | {"skipped": reason}
    work = work_root / dataset.name
    work.mkdir(parents=True, exist_ok=True)
    results = discovered_keypoints(dataset, args, work)
    result = KeypointResult.load(results)
    labels = load_labels(dataset.labels, body_axis=dataset.body_axis)
    names = [n for n in labels.names if n not in dataset.not_animal]
    columns = [labels.names.index(n) for n in names]
    joints = labels.joints[:, columns]
    with open_video(result.require_video()) as source:
        blob = blob_features_of_video(source)
    n = len(joints)
    halves = (np.arange(n // 2), np.arange(n // 2, n))
    length = labels.body_length

    def named(train: np.ndarray, features: FeatureSet | None = None) -> KeypointResult:
        """The map fitted on ``train`` with ``features`` (None: as `bkind name` fits it).

        Bodyparts labelled in fewer than ``MIN_FRAMES`` of them stay NaN.
        """
        subset = labels_from_joints(
            labels.joints[train], labels.names, [labels.frames[i] for i in train]
        )
        counts = np.isfinite(joints[train]).all(axis=-1).sum(axis=0)
        kept = [name for name, c in zip(names, counts, strict=True) if c >= MIN_FRAMES]
        parts = Bodyparts(tuple(kept))
        fitted = (
            fit_best_map(result, subset, train, parts, blob=blob)
            if features is None
            else fit_map(result, subset, train, parts, features=features, blob=blob)
        )
        prediction = fitted.predict(result, blob=blob)
        columns = [names.index(k) for k in kept]
        full, chance = np.full((n, len(names), 2), np.nan), np.full((n, len(names)), np.nan)
        full[:, columns], chance[:, columns] = prediction.keypoints, prediction.likelihood
        prediction.keypoints, prediction.likelihood = full, chance
        return prediction

    variants: dict[str, FeatureSet | None] = {
        "mapping": None,
        "default_features": DEFAULT_FEATURES,
        "keypoints_only": KEYPOINTS_ONLY,
        "uncertainty": FeatureSet(uncertainty=True),
        "blob_features": FeatureSet(blob=True),
        "blob_frame": FeatureSet(blob_frame=True),
        "fusion": replace(DEFAULT_FEATURES, fusion=True),
    }
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        name: (lambda train, test, fs=fs: named(train, fs).keypoints[test])
        for name, fs in variants.items()
    }
    keypoints = keypoint_features(result.keypoints)
    methods["image_ridge"] = lambda train, test: image_ridge(keypoints, joints, train, test)
    methods["blob"] = lambda train, test: image_ridge(blob, joints, train, test)
    rng = np.random.default_rng(args.seed)
    curve, stated, hits = [], [], []
    for wanted in args.n_labels:
        size = min(wanted or len(halves[0]), len(halves[0]))
        errors: dict[str, list[float]] = {name: [] for name in [*methods, "proposed"]}
        for draw in range(args.draws if size < len(halves[0]) else 2):
            pool, test = halves[draw % 2], halves[1 - draw % 2]
            train = np.sort(rng.choice(pool, size, replace=False))
            for name, method in methods.items():
                errors[name].append(_score(method(train, test), joints[test]))
            if wanted == args.calibration_n:
                prediction = named(train)
                errors_px = np.linalg.norm(prediction.keypoints[test] - joints[test], axis=-1)
                scored = np.isfinite(errors_px)
                radius = prediction.metadata["likelihood_radius_px"]
                stated.append(prediction.likelihood[test][scored])
                hits.append(errors_px[scored] < radius)
        for side in (0, 1):
            pool, test = halves[side], halves[1 - side]
            part = KeypointResult(
                result.keypoints[pool], result.confidence[pool], result.covariance[pool]
            )
            train = pool[propose_frames(part, size, seed=args.seed)]
            errors["proposed"].append(_score(named(train).keypoints[test], joints[test]))
        point: dict = {"n_labels": int(size)}
        for name, values in errors.items():
            median = float(np.median(values))
            point[name] = {"error_px": median, "error_body_lengths": median / length}
        curve.append(point)
        real.log(f"few_labels {dataset.name}: {json.dumps(point)}")
    line = head | {
        "results": str(results),
        "n_images": int(n),
        "body_length_px": float(length),
        "bodyparts": names,
        "draws": args.draws,
        "curve": curve,
        "likelihood": {
            "n_labels": args.calibration_n,
            "radius_body_lengths": LIKELIHOOD_RADIUS,
            "mean_likelihood": float(np.concatenate(stated).mean()),
            "share_within_radius": float(np.concatenate(hits).mean()),
        }
        if stated
        else None,
    }
    if dataset.name == GOAL["dataset"]:
        at = next((p for p in curve if p["n_labels"] == GOAL["n_labels"]), None)
        line["goal"] = GOAL | {
            "mapping": None if at is None else at["mapping"]["error_body_lengths"],
            "met": at is not None and at["mapping"]["error_body_lengths"] <= GOAL["body_lengths"],
        }
    line["png"] = str(plot(curve, dataset.name, Path(args.out)))
    line["runtime_s"] = round(time.perf_counter() - began, 1)
    return line


def plot(curve: list[dict], name: str, out: Path) -> Path:
    """Learning curves (body lengths against labelled images) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [p["n_labels"] for p in curve]
    fig, ax = plt.subplots(figsize=(8, 4))
    for method in METHODS:
        values = [p[method]["error_body_lengths"] for p in curve]
        ax.plot(sizes, values, marker="o", label=method, lw=2.5 if method == "mapping" else 1.2)
    if name == GOAL["dataset"]:
        ax.axhline(GOAL["body_lengths"], color="gray", ls=":", label="goal (20 labels)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("labelled images")
    ax.set_ylabel("held-out error (body lengths, log scale)")
    ax.set_title(f"named bodyparts from few labels: {name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"few_labels_{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("openfield", "mirror", "all"), default="all")
    parser.add_argument("--work", help="a real.py --work folder to reuse (default: temporary)")
    parser.add_argument("--steps", type=int, default=900, help="training steps without --work")
    parser.add_argument("--draws", type=int, default=10, help="random labelled subsets per n")
    parser.add_argument("--n-labels", type=int, nargs="+", default=list(N_LABELS))
    parser.add_argument("--calibration-n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(real.DEFAULT_OUT), help="folder of the PNGs")
    args = parser.parse_args(argv)
    shared = real.shared_datasets()
    chosen = list(shared.values()) if args.dataset == "all" else [shared[args.dataset]]
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bkind-few-"))
    status = 0
    for dataset in chosen:
        try:
            line = run_dataset(dataset, args, work_root)
        except Exception as exc:  # one dataset failing must not hide the other
            status = 1
            line = {"benchmark": "few_labels", "dataset": dataset.name, "error": repr(exc)}
        print(json.dumps(line), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
