"""The ``bkind`` command line: train, extract, evaluate, export, their 3D twins, demo.

Thin by design: it parses arguments, calls the same API as the napari plugin and shows
progress bars. Errors the user can fix are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from bkind_model import __version__
from bkind_model.cli.behaviour import add_behaviour_commands
from bkind_model.cli.cache import add_cache_commands
from bkind_model.cli.multiview import add_3d_commands
from bkind_model.cli.naming import add_naming_commands
from bkind_model.cli.options import (
    add_overwrite_option,
    add_training_options,
    config_from_args,
    positive_int,
    seed,
    whole_number,
)
from bkind_model.cli.overlay import add_overlay_commands
from bkind_model.cli.progress import (
    TrainingStopped,
    follower_rank,
    run_extraction,
    run_many_extractions,
    run_training,
)
from bkind_model.config import TASK_FRAMES
from bkind_model.errors import BKindError, ConfigError, RefusedByRankZero
from bkind_model.io.export import FORMATS as EXPORT_FORMATS


def _cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = run_training(
        args.videos, Path(args.out), config, resume=not args.restart, distributed=args.distributed
    )
    if not follower_rank(args.distributed):
        print(path)
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from bkind_model.io.checkpoint import checkpoint_file
    from bkind_model.io.outputs import check_output

    videos = [Path(v) for v in args.video]
    inputs = [*videos, checkpoint_file(args.checkpoint)]
    if len(videos) == 1 and args.scheduler is None and args.workers is None:
        out = Path(args.out) if args.out else videos[0].with_suffix(".bkind.h5")
        check_output(out, inputs, overwrite=args.overwrite)
        print(run_extraction(args.checkpoint, videos[0], out, heatmaps=args.heatmaps))
        return 0
    if args.heatmaps:
        raise ConfigError("--heatmaps is for one video at a time; leave it out with many.")
    folder = Path(args.out) if args.out else None
    if folder is not None and folder.suffix == ".h5":
        raise ConfigError(f"{folder}: with many videos, --out is a folder for their results.")
    outs = [(folder or v.parent) / v.with_suffix(".bkind.h5").name for v in videos]
    finished = _finished_results(checkpoint_file(args.checkpoint), outs)
    for out in outs:
        if out not in finished:  # those are kept: the work of an earlier run of this model
            check_output(out, inputs, overwrite=args.overwrite)
    from bkind_model.infer.cluster import cluster_client

    with contextlib.ExitStack() as stack:
        client = None  # extract_many starts a local cluster only for unfinished videos
        if args.scheduler is not None:
            client = stack.enter_context(cluster_client(args.scheduler))
        for path in run_many_extractions(
            args.checkpoint, videos, outs, client, args.workers, chunk_frames=args.chunk_frames
        ):
            print(path)
    return 0


def _finished_results(checkpoint: Path, outs: list[Path]) -> set[Path]:
    """The results files among ``outs`` that ``checkpoint`` finished (a resumed run keeps them)."""
    from bkind_model.infer.cluster import is_finished
    from bkind_model.io.checkpoint import file_hash

    existing = [out for out in outs if out.is_file()]
    if not existing or not checkpoint.is_file():
        return set()
    sha256 = file_hash(checkpoint)
    return {out for out in existing if is_finished(out, sha256)}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from bkind_model.evaluate.regression import evaluate_results

    scores = evaluate_results(args.results, args.labels, folds=args.folds, video=args.video)
    print(json.dumps(scores, indent=2, allow_nan=False))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from bkind_model.io.export import export_results

    print(export_results(args.results, to=args.to, out=args.out, overwrite=args.overwrite))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bkind_model.cli.demo import run_demo

    summary = run_demo(Path(args.out), steps=args.steps, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line like every other error of ``bkind``."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (`{self.prog} --help` lists the options).")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bkind`` (its errors raise :class:`ConfigError`)."""
    parser = _Parser(
        prog="bkind",
        description="Discover an animal's keypoints in videos without labels. Commands that "
        "write never write over one of their inputs, and replace an existing file only with "
        "--overwrite.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train on one or more videos")
    train.add_argument("videos", nargs="+", help="video files or image folders")
    train.add_argument("--out", required=True, help="run folder (checkpoint.pt goes there)")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a torchrun job (DistributedDataParallel); --batch is the global "
        "batch: torchrun --nproc_per_node N -m bkind_model train ... --distributed",
    )
    add_training_options(train)
    train.set_defaults(func=_cmd_train)

    extract = sub.add_parser(
        "extract",
        help="discover keypoints on every frame of a video (or of many, on a dask cluster)",
    )
    extract.add_argument("checkpoint", help="checkpoint file or run folder")
    extract.add_argument("video", nargs="+", help="video files or image folders")
    extract.add_argument(
        "--out", help="results .h5 (default: beside the video); with many videos a folder"
    )
    extract.add_argument("--heatmaps", action="store_true", help="store low-res heatmaps too")
    add_overwrite_option(
        extract,
        "replace existing results files (with many videos, those this checkpoint finished "
        "are kept)",
    )
    extract.add_argument(
        "--scheduler",
        help="address of a dask scheduler (default with many videos: a local cluster of "
        "one single-threaded worker per CPU core)",
    )
    extract.add_argument("--workers", type=positive_int, help="workers of the local cluster")
    extract.add_argument(
        "--chunk-frames",
        type=positive_int,
        default=TASK_FRAMES,
        help=f"frames per task with many videos (default {TASK_FRAMES})",
    )
    extract.set_defaults(func=_cmd_extract)

    evaluate = sub.add_parser("evaluate", help="regress labelled joints from keypoints")
    evaluate.add_argument("results", help="results .h5 from `bkind extract`")
    evaluate.add_argument(
        "labels", help="DeepLabCut CollectedData .h5/.csv, or a synthetic ground-truth .npz"
    )
    evaluate.add_argument(
        "--folds", type=whole_number(2), default=2, help="2: halves (default), k: k-fold"
    )
    evaluate.add_argument(
        "--video", help="the labelled frames (default: the video recorded in the results)"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    export = sub.add_parser(
        "export",
        help="write results in another tool's format",
        description="dlc: DeepLabCut .h5/.csv; sleap: SLEAP analysis .h5; nwb: NWB with "
        "ndx-pose; nc: movement's dataset as netCDF; csv: one row per frame and keypoint. "
        "sleap, nwb and nc need the movement extra.",
    )
    export.add_argument("results", help="results .h5 from `bkind extract`")
    export.add_argument("--to", default="dlc", choices=EXPORT_FORMATS, help="format (default dlc)")
    export.add_argument(
        "--out",
        help="output file (default beside the results: <stem>DLC_bkind.h5, <stem>.analysis.h5, "
        "<stem>.nwb, <stem>.nc or <stem>.keypoints.csv)",
    )
    add_overwrite_option(export, "replace an existing output file")
    export.set_defaults(func=_cmd_export)

    add_3d_commands(sub)
    add_behaviour_commands(sub)
    add_naming_commands(sub)
    add_overlay_commands(sub)
    add_cache_commands(sub)

    demo = sub.add_parser("demo", help="the whole job on the bundled synthetic sample")
    demo.add_argument("--out", default="bkind-demo", help="output folder")
    demo.add_argument("--steps", type=positive_int, default=None, help="training steps")
    demo.add_argument("--seed", type=seed, default=0, help="random seed")
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
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:  # a bad option: one line, status 2, as argparse's own
        print(f"bkind: error: {exc}", file=sys.stderr)
        return 2
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
        if not follower_rank(getattr(args, "distributed", False)):
            print(f"bkind: error: {exc}", file=sys.stderr)
        elif not isinstance(exc, RefusedByRankZero):  # rank 0 tells that one
            print(f"bkind: error (rank {os.environ['RANK']}): {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        if not follower_rank(getattr(args, "distributed", False)):
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
