"""``bkind behaviour train | predict`` and ``bkind motifs``: ethograms from keypoints.

``train`` fits a behaviour classifier on the labelled frames of results files (labels: an
intervals CSV or a frame x behaviour CSV, e.g. corrected predictions); ``predict`` writes
a video's ethogram as a frame x behaviour CSV with probabilities; ``motifs`` finds
recurring motifs without any label and writes them the same way.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from bkind_model.cli.options import (
    add_overwrite_option,
    non_negative_float,
    positive_float,
    probability,
    seed,
    whole_number,
)
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult


def _load_all(paths: list[str]) -> list[KeypointResult]:
    return [KeypointResult.load(path) for path in paths]


def _summary(ethograms) -> None:
    """Frames per behaviour of each ethogram, on stderr."""
    for ethogram in ethograms:
        counts = ethogram.binary().sum(axis=0)
        shown = ", ".join(f"{n} {c}" for n, c in zip(ethogram.names, counts, strict=True))
        print(f"{ethogram.video}: {shown} frames", file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    from bkind_model.behaviour.classifier import ClassifierSettings, train_classifier
    from bkind_model.behaviour.labels import read_labels

    check_output(args.out, [*args.results, args.labels], overwrite=args.overwrite)
    settings = ClassifierSettings(
        window_s=args.window_s, smooth_s=args.smooth_s, estimator=args.estimator
    )
    labels = read_labels(args.labels)
    model = train_classifier(_load_all(args.results), labels, settings, seed=args.seed)
    counts = ", ".join(f"{n} {c}" for n, c in labels.frame_counts().items())
    print(f"Trained on {sum(model.trained_on.values())} frames ({counts}).", file=sys.stderr)
    print(model.save(args.out, overwrite=args.overwrite))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from bkind_model.behaviour.classifier import BehaviourClassifier
    from bkind_model.behaviour.ethogram import write_ethograms

    check_output(args.out, [args.model, *args.results], overwrite=args.overwrite)
    model = BehaviourClassifier.load(args.model)
    if args.threshold is not None:
        model.settings = replace(model.settings, threshold=args.threshold)
    ethograms = [model.predict(result) for result in _load_all(args.results)]
    _summary(ethograms)
    print(write_ethograms(args.out, ethograms, overwrite=args.overwrite))
    return 0


def _cmd_motifs(args: argparse.Namespace) -> int:
    from bkind_model.behaviour.ethogram import write_ethograms
    from bkind_model.behaviour.motifs import MotifSettings, find_motifs

    check_output(args.out, args.results, overwrite=args.overwrite)
    settings = MotifSettings(n_motifs=args.k, window_s=args.window_s)
    ethograms = find_motifs(_load_all(args.results), settings, seed=args.seed)
    _summary(ethograms)
    print(write_ethograms(args.out, ethograms, overwrite=args.overwrite))
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_overwrite_option(parser, "replace an existing --out file")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")


def add_behaviour_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``behaviour`` (``train``, ``predict``) and ``motifs`` to ``bkind``'s subcommands."""
    behaviour = sub.add_parser("behaviour", help="ethograms from labelled behaviour intervals")
    commands = behaviour.add_subparsers(dest="behaviour_command", required=True)

    train = commands.add_parser("train", help="train a behaviour classifier on labelled frames")
    train.add_argument("results", nargs="+", help="results .h5 of the labelled videos")
    train.add_argument(
        "--labels", required=True, help="intervals CSV or frame x behaviour CSV of those videos"
    )
    train.add_argument("--out", required=True, help="model file to write (e.g. behaviour.skops)")
    train.add_argument(
        "--window-s", type=positive_float, default=1.0, help="feature window, seconds (default 1)"
    )
    train.add_argument(
        "--smooth-s",
        type=non_negative_float,
        default=0.5,
        help="probability smoothing, seconds (0.5)",
    )
    train.add_argument(
        "--estimator",
        choices=("logistic", "boosting"),
        default="logistic",
        help="logistic regression (default) or gradient boosting (slower)",
    )
    _add_common(train)
    train.set_defaults(func=_cmd_train)

    predict = commands.add_parser("predict", help="write the ethogram of results as CSV")
    predict.add_argument("model", help="model file from `bkind behaviour train`")
    predict.add_argument("results", nargs="+", help="results .h5 files")
    predict.add_argument("--out", required=True, help="ethogram CSV (frame x behaviour)")
    predict.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="smallest probability that gives a frame a behaviour (default: the model's)",
    )
    _add_common(predict)
    predict.set_defaults(func=_cmd_predict)

    motifs = sub.add_parser("motifs", help="recurring behaviour motifs without labels")
    motifs.add_argument("results", nargs="+", help="results .h5 files (the same keypoints)")
    motifs.add_argument("-k", type=whole_number(2), default=8, help="number of motifs (default 8)")
    motifs.add_argument("--out", required=True, help="motif ethogram CSV (frame x motif)")
    motifs.add_argument(
        "--window-s", type=positive_float, default=1.0, help="feature window, seconds (default 1)"
    )
    _add_common(motifs)
    motifs.set_defaults(func=_cmd_motifs)
