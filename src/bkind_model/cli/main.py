"""The ``bkind`` command line: train, extract, evaluate, export, demo.

Thin by design: it parses arguments, calls the same API as the napari plugin and shows
progress bars. Errors the user can fix are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from bkind_model.cli.progress import TrainingStopped, run_extraction, run_training
from bkind_model.config import ENCODERS, PRESETS, RECONSTRUCTION_LOSSES, Config, MaskSettings
from bkind_model.errors import BKindError, ConfigError


def _config_from_args(args: argparse.Namespace) -> Config:
    values = {
        "n_keypoints": args.keypoints,
        "image_size": args.image_size,
        "crop_size": args.crop_size,
        "steps": args.steps,
        "batch_size": args.batch,
        "lr": args.lr,
        "encoder": args.encoder,
        "pretrained": args.pretrained,
        "reconstruction_loss": args.loss,
        "device": args.device,
        "seed": args.seed,
        "threads": args.threads,
    }
    if args.gap is not None:
        values["frame_gap"] = args.gap
        values["gap_unit"] = "seconds" if args.gap_seconds else "frames"
    values["masks"] = _masks_from_args(args)
    values["checkpoint_every"] = args.checkpoint_every
    values["checkpoint_minutes"] = args.checkpoint_minutes
    base = _resumed_config(args)
    length = dict(PRESETS[args.preset or "standard"]) if base is None or args.preset else {}
    if args.steps is not None:
        length = {"steps": args.steps, "minutes": None}  # an exact count wins over budgets
    elif args.minutes is not None:
        length = {"minutes": args.minutes}
    base = Config.from_dict((base or Config()).to_dict() | length)
    given = {k: v for k, v in values.items() if v is not None}
    if args.masks is None and args.static_mask is None and args.mask_settings is None:
        given.pop("masks", None)  # no mask option given: keep the base's masks
    return Config.from_dict(base.to_dict() | {k: _plain(v) for k, v in given.items()})


def _plain(value: object) -> object:
    """Mask settings as the dict :meth:`Config.from_dict` takes; other values unchanged."""
    return value.to_dict() if isinstance(value, MaskSettings) else value


def _resumed_config(args: argparse.Namespace) -> Config | None:
    """The settings of the checkpoint a `bkind train` resumes, so options not given keep them."""
    if args.restart:
        return None
    path = Path(args.out) / "checkpoint.pt"
    if not path.is_file():
        return None
    from bkind_model.io.checkpoint import checkpoint_config, load_checkpoint

    return checkpoint_config(load_checkpoint(path), path)


def _masks_from_args(args: argparse.Namespace) -> MaskSettings | None:
    """Mask settings from ``--masks``, ``--mask-use``, ``--static-mask``, ``--mask-settings``."""
    if args.masks is None and args.static_mask is None and args.mask_settings is None:
        return None
    try:
        values = json.loads(args.mask_settings or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--mask-settings is not JSON ({exc}); e.g. '{{\"value\": [0, 0.3]}}'."
        ) from exc
    if not isinstance(values, dict):
        raise ConfigError("--mask-settings must be a JSON object, e.g. '{\"value\": [0, 0.3]}'.")
    chosen = {"method": args.masks, "use": args.mask_use, "static_mask": args.static_mask}
    return MaskSettings.from_dict(values | {k: v for k, v in chosen.items() if v is not None})


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--keypoints", type=int, help="number of keypoints K (default 10)")
    group.add_argument(
        "--image-size",
        type=int,
        help="side of the model input, px (default: from the window's size, 96-128)",
    )
    group.add_argument(
        "--crop-size",
        type=float,
        help="side of the window that follows the animal, video px (default: measured; "
        "0: whole frame)",
    )
    group.add_argument(
        "--minutes",
        type=float,
        help=f"time budget of training (default {PRESETS['standard']['minutes']:g}): the steps "
        "are set from the speed measured on the first steps",
    )
    group.add_argument("--steps", type=int, help="exact number of training steps (no budget)")
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="standard: the default time budget; quick: 300 steps (a first look, the demo)",
    )
    group.add_argument("--batch", type=int, help="frame pairs per step")
    group.add_argument("--lr", type=float, help="learning rate")
    group.add_argument("--encoder", choices=ENCODERS, help="encoder architecture")
    group.add_argument("--pretrained", help="encoder weights file, or 'torch-cache'")
    group.add_argument("--loss", choices=RECONSTRUCTION_LOSSES, help="reconstruction loss")
    group.add_argument("--gap", type=float, help="frame gap (suggested from the video if unset)")
    group.add_argument("--gap-seconds", action="store_true", help="--gap is in seconds")
    group.add_argument("--device", help="auto (default), cpu, cuda, mps")
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--threads", type=int, help="CPU threads for torch")
    group.add_argument(
        "--checkpoint-every", type=int, help="steps between checkpoints (default 200)"
    )
    group.add_argument(
        "--checkpoint-minutes",
        type=float,
        help="minutes of training between checkpoints (default 5)",
    )
    masks = parser.add_argument_group("shadows and masks")
    masks.add_argument(
        "--masks",
        choices=("background", "colour"),
        help="ignore shadows found against a background model, or all but an HSV colour range",
    )
    masks.add_argument(
        "--mask-use",
        choices=("fill", "black", "target"),
        help="ignored pixels: filled with the background (default), black, or only left out "
        "of the reconstruction target",
    )
    masks.add_argument(
        "--static-mask", help="image (.png/.npy) of the video's size: nonzero = ignore"
    )
    masks.add_argument(
        "--mask-settings",
        help='other mask settings as JSON, e.g. \'{"hue": [90, 130], "value": [0.2, 1]}\'',
    )


def _cmd_train(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    path = run_training(args.videos, Path(args.out), config, resume=not args.restart)
    print(path)
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.video).with_suffix(".bkind.h5")
    print(run_extraction(args.checkpoint, args.video, out, heatmaps=args.heatmaps))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from bkind_model.evaluate.regression import evaluate_results

    scores = evaluate_results(args.results, args.labels, folds=args.folds, video=args.video)
    print(json.dumps(scores, indent=2, allow_nan=False))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from bkind_model.io.export import export_results

    print(export_results(args.results, to=args.to, out=args.out))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bkind_model.cli.demo import run_demo

    summary = run_demo(Path(args.out), steps=args.steps, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bkind``."""
    parser = argparse.ArgumentParser(
        prog="bkind", description="Discover an animal's keypoints in videos without labels."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train on one or more videos")
    train.add_argument("videos", nargs="+", help="video files or image folders")
    train.add_argument("--out", required=True, help="run folder (checkpoint.pt goes there)")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    _add_training_options(train)
    train.set_defaults(func=_cmd_train)

    extract = sub.add_parser("extract", help="discover keypoints on every frame of a video")
    extract.add_argument("checkpoint", help="checkpoint file or run folder")
    extract.add_argument("video", help="video file or image folder")
    extract.add_argument("--out", help="results .h5 (default: beside the video)")
    extract.add_argument("--heatmaps", action="store_true", help="store low-res heatmaps too")
    extract.set_defaults(func=_cmd_extract)

    evaluate = sub.add_parser("evaluate", help="regress labelled joints from keypoints")
    evaluate.add_argument("results", help="results .h5 from `bkind extract`")
    evaluate.add_argument(
        "labels", help="DeepLabCut CollectedData .h5/.csv, or a synthetic ground-truth .npz"
    )
    evaluate.add_argument("--folds", type=int, default=2, help="2: halves (default), k: k-fold")
    evaluate.add_argument(
        "--video", help="the labelled frames (default: the video recorded in the results)"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    export = sub.add_parser("export", help="write results in another tool's format")
    export.add_argument("results", help="results .h5 from `bkind extract`")
    export.add_argument("--to", default="dlc", choices=("dlc",), help="format (default dlc)")
    export.add_argument(
        "--out", help="output file, .h5 or .csv (default: <video>DLC_bkind.h5 beside it)"
    )
    export.set_defaults(func=_cmd_export)

    demo = sub.add_parser("demo", help="the whole job on the bundled synthetic sample")
    demo.add_argument("--out", default="bkind-demo", help="output folder")
    demo.add_argument("--steps", type=int, default=None, help="training steps")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=_cmd_demo)
    return parser


class _Terminated(BaseException):
    """SIGTERM or SIGHUP outside the training loop (which stops at a step boundary)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bkind`` console script."""
    args = build_parser().parse_args(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
        for sig in previous:  # preparation, extraction, export: stop cleanly, files intact
            signal.signal(sig, _terminate)
    try:
        return args.func(args)
    except _Terminated as exc:
        name = signal.Signals(exc.signum).name
        print(
            f"bkind: stopped by {name}; finished files are intact and unfinished ones were "
            "removed or kept to resume: run the same command again.",
            file=sys.stderr,
        )
        return 128 + exc.signum
    except BKindError as exc:
        print(f"bkind: error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        print(f"bkind: {exc}", file=sys.stderr)
        return 128 + int(getattr(signal, exc.signal))
    except KeyboardInterrupt:
        print(
            "bkind: interrupted; the last checkpoint is kept, run again to resume.",
            file=sys.stderr,
        )
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
