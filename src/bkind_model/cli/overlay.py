"""``bkind overlay``: the video with keypoints, skeleton, trails and names drawn, as mp4.

The command line's twin of DeepLabCut's ``create_labeled_video``, for discovered keypoints
and for named bodyparts (whose results carry their skeleton and likelihood).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bkind_model.cli.options import (
    add_overwrite_option,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from bkind_model.cli.progress import progress_bar


def _cmd_overlay(args: argparse.Namespace) -> int:
    from bkind_model.io.overlay import default_overlay_path, write_overlay_video
    from bkind_model.io.results import KeypointResult

    result = KeypointResult.load(args.results)
    out = Path(args.out) if args.out else default_overlay_path(args.results)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # once the inputs are checked, so an error comes without a bar
            bar = progress_bar(total, "frame", desc="Overlay")
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
    add_overwrite_option(overlay, "replace an existing output file")
    overlay.add_argument(
        "--trail",
        type=non_negative_int,
        default=10,
        help="frames of trail behind each keypoint (default 10)",
    )
    overlay.add_argument(
        "--skeleton",
        help="edges to draw, e.g. nose-neck,neck-tail or 0-1,1-2 (default: the results' "
        "skeleton, none for discovered keypoints; '' draws none)",
    )
    overlay.add_argument("--no-names", action="store_true", help="do not write keypoint names")
    overlay.add_argument(
        "--start", type=non_negative_int, default=0, help="first frame (default 0)"
    )
    overlay.add_argument(
        "--stop", type=positive_int, help="frame after the last (default: the end)"
    )
    overlay.add_argument(
        "--min-likelihood",
        type=probability,
        default=0.6,
        help="keypoints below this likelihood (0-1, the one exports write) are drawn hollow, "
        "without edges and trails (default 0.6, DeepLabCut's usual pcutoff and the plugin's)",
    )
    overlay.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        help="output size as a fraction of the video's, for big videos (default 1)",
    )
    overlay.add_argument(
        "--radius",
        type=positive_float,
        help="keypoint radius in output px, > 0 (default: width / 160)",
    )
    overlay.set_defaults(func=_cmd_overlay)
