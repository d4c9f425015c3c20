"""``bkind propose`` and ``bkind name``: named bodyparts from a few labelled frames.

1. ``bkind propose RESULTS -n 20 --extract-to labeled-data/<video stem>`` picks diverse
   frames and saves their PNGs where DeepLabCut and napari-deeplabcut expect them.
2. Label them (napari-deeplabcut, or the napari-bkind "Name bodyparts" widget), which
   writes ``CollectedData_<scorer>.h5``.
3. ``bkind name RESULTS CollectedData_<scorer>.h5 --machinelabels labeled-data/<video
   stem>`` fits the map, names every frame (``<video>.named.bkind.h5``) and writes the
   least likely frames as ``machinelabels-iter0.h5`` to correct in napari-deeplabcut;
   naming again with the corrected labels refits.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from bkind_model.cli.options import add_overwrite_option, positive_int, seed
from bkind_model.io.outputs import check_output


def _cmd_propose(args: argparse.Namespace) -> int:
    from bkind_model.io.atomic import atomic_path, ensure_folder
    from bkind_model.io.labels import load_labels, write_images
    from bkind_model.io.results import KeypointResult
    from bkind_model.naming.mapping import labelled_frames
    from bkind_model.naming.proposal import propose_frames

    inputs = (args.results, args.exclude)
    if args.out:
        check_output(args.out, inputs, overwrite=args.overwrite)  # before the work
    result = KeypointResult.load(args.results)
    exclude = (
        labelled_frames(result, load_labels(args.exclude), args.exclude) if args.exclude else None
    )
    frames = propose_frames(result, args.n, exclude=exclude, seed=args.seed)
    if args.extract_to:  # first: it refuses a different PNG of the same name before writing
        images = write_images(
            result.require_video(), frames, args.extract_to, overwrite=args.overwrite
        )
    if args.out:
        out = Path(args.out)
        ensure_folder(out.parent)
        with atomic_path(out, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["frame", "time_s"])
            writer.writerows([int(t), round(int(t) / result.fps, 4)] for t in frames)
        print(out)
    if args.extract_to:
        for path in images:
            print(path)
    if not args.out and not args.extract_to:
        print(" ".join(str(int(t)) for t in frames))
    return 0


def _cmd_name(args: argparse.Namespace) -> int:
    from bkind_model.io.labels import MACHINE_LABELS
    from bkind_model.naming.bodyparts import Bodyparts
    from bkind_model.naming.export import frames_to_refine, write_machinelabels
    from bkind_model.naming.run import default_named_path, map_path, name_results, save_naming

    out = Path(args.out) if args.out else default_named_path(args.results)
    outs = [out, map_path(out)]
    if args.machinelabels:
        outs.append(Path(args.machinelabels) / MACHINE_LABELS)
    for target in outs:  # before the work, not after it
        check_output(target, (args.results, args.labels, args.bodyparts), overwrite=args.overwrite)
    bodyparts = Bodyparts.load(args.bodyparts) if args.bodyparts else None
    naming = name_results(args.results, args.labels, bodyparts)
    named_path, map_file = save_naming(naming, out, overwrite=args.overwrite)
    summary: dict[str, Any] = {
        "named": str(named_path),
        "map": str(map_file),
        "labelled_frames": int(naming.map.source["n_labelled"]),
        "body_length_px": naming.labels.body_length,
        "leave_one_out_error_px": dict(
            zip(naming.map.bodyparts.names, naming.map.loo_error_px.round(2).tolist(), strict=True)
        ),
        "likelihood_radius_px": naming.map.radius_px,
    }
    if args.machinelabels:
        naming.named.path = named_path
        frames = frames_to_refine(naming.named, args.refine, exclude=naming.frames)
        summary["machinelabels"] = str(
            write_machinelabels(naming.named, args.machinelabels, frames, overwrite=args.overwrite)
        )
        summary["frames_to_refine"] = [int(f) for f in frames]
    print(json.dumps(summary, indent=2))
    return 0


def add_naming_commands(sub: Any) -> None:
    """Add ``propose`` and ``name`` to ``bkind``'s subparsers."""
    propose = sub.add_parser("propose", help="frames to label: diverse poses over the video")
    propose.add_argument("results", help="results .h5 of the video (`bkind extract`)")
    propose.add_argument("-n", type=positive_int, default=20, help="frames wanted (default 20)")
    propose.add_argument("--exclude", help="labels file whose frames are not proposed again")
    propose.add_argument("--out", help="CSV of the frames (frame, time_s)")
    propose.add_argument(
        "--extract-to", help="folder for the frames' PNGs, e.g. labeled-data/<video stem>"
    )
    propose.add_argument("--seed", type=seed, default=0, help="k-means seed")
    add_overwrite_option(
        propose, "replace an existing --out, and PNGs in --extract-to that hold other images"
    )
    propose.set_defaults(func=_cmd_propose)

    name = sub.add_parser("name", help="named bodyparts on every frame from a few labels")
    name.add_argument("results", help="results .h5 of the video (`bkind extract`)")
    name.add_argument("labels", help="DeepLabCut CollectedData_*.h5 / .csv of some frames")
    name.add_argument(
        "--bodyparts", help="DeepLabCut config.yaml or JSON (default: the labels' bodyparts)"
    )
    name.add_argument("--out", help="named .bkind.h5 (default: <video>.named.bkind.h5)")
    name.add_argument(
        "--machinelabels", help="labeled-data/<video stem> folder for machinelabels-iter0.h5"
    )
    name.add_argument(
        "--refine", type=positive_int, default=20, help="frames in the machinelabels (default 20)"
    )
    add_overwrite_option(name, "replace existing output files")
    name.set_defaults(func=_cmd_name)
