"""``bkind overlay``: the video with keypoints, skeleton, trails and names drawn, as mp4.

The command line's twin of DeepLabCut's ``create_labeled_video``, for discovered keypoints
and for named bodyparts (whose results carry their skeleton and likelihood).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm


def _cmd_overlay(args: argparse.Namespace) -> int:
    from bkind_model.io.overlay import default_overlay_path, write_overlay_video
    from bkind_model.io.results import KeypointResult

    result = KeypointResult.load(args.results)
    out = Path(args.out) if args.out else default_overlay_path(args.results)
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # once the inputs are checked, so an error comes without a bar
            bar = tqdm(total=total, unit="frame", file=sys.stderr, desc="Overlay")
        bar.update(done - bar.n)

    try:
        written = write_overlay_video(
            result,
            out,
            video=args.video,
            trail=args.trail,
            skeleton=args.skeleton,
            names=not args.no_names,
            min_likelihood=args.min_likelihood,
            start=args.start,
            stop=args.stop,
            scale=args.scale,
            radius=args.radius,
            overwrite=args.overwrite,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()  # before any error message, which then gets a line of its own
    print(written)
    return 0


def add_overlay_commands(sub: Any) -> None:
    """Add ``bkind overlay`` to the ``bkind`` parser's subcommands."""
    overlay = sub.add_parser(
        "overlay", help="draw keypoints, skeleton, trails and names on the video (mp4)"
    )
    overlay.add_argument("results", help="results .h5 (discovered keypoints or named bodyparts)")
    overlay.add_argument("--video", help="the video (default: the one recorded in the results)")
    overlay.add_argument(
        "--out", help="output .mp4 (default: <results stem>.overlay.mp4 beside the results)"
    )
    overlay.add_argument(
        "--overwrite", action="store_true", help="replace an existing output file"
    )
    overlay.add_argument(
        "--trail", type=int, default=10, help="frames of trail behind each keypoint (default 10)"
    )
    overlay.add_argument(
        "--skeleton",
        help="edges to draw, e.g. nose-neck,neck-tail or 0-1,1-2 (default: the results' "
        "skeleton, none for discovered keypoints; '' draws none)",
    )
    overlay.add_argument("--no-names", action="store_true", help="do not write keypoint names")
    overlay.add_argument("--start", type=int, default=0, help="first frame (default 0)")
    overlay.add_argument("--stop", type=int, help="frame after the last (default: the end)")
    overlay.add_argument(
        "--min-likelihood",
        type=float,
        default=0.0,
        help="keypoints below this likelihood (0-1, the one exports write) are drawn hollow, "
        "without edges and trails (default 0; 0.6 is DeepLabCut's usual cut-off)",
    )
    overlay.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="output size as a fraction of the video's, for big videos (default 1)",
    )
    overlay.add_argument(
        "--radius", type=float, help="keypoint radius in output px (default: width / 160)"
    )
    overlay.set_defaults(func=_cmd_overlay)
