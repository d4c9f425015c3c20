"""``bkind train3d``, ``extract3d``, ``evaluate3d`` and ``export3d``: 3D from calibrated cameras.

Views are matched to the calibration's cameras by file name (the file name contains the
camera's name); ``--views name=path`` says it explicitly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bkind_model.cli.options import add_overwrite_option, add_training_options, config_from_args
from bkind_model.cli.progress import TrainingStopped, progress_bar
from bkind_model.config import json_object
from bkind_model.errors import ConfigError


def _pairs(values: list[str] | None, what: str, example: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``, with a clear error for a bad item."""
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{what} {item!r}: write NAME=VALUE, e.g. {example}.")
        out[name] = value
    return out


def _session(args: argparse.Namespace) -> Any:
    from bkind_model.multiview.views import open_session

    views = _pairs(args.views, "--views", "--views side=videos/side.mp4")
    offsets = {
        name: _whole(value, name)
        for name, value in _pairs(args.offsets, "--offsets", "--offsets side=3").items()
    }
    return open_session(args.videos, args.calibration, overrides=views, offsets=offsets or None)


def _whole(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"--offsets {name}={value}: the offset is a whole number of frames."
        ) from None


def _cmd_train3d(args: argparse.Namespace) -> int:
    from bkind_model.multiview.training import Trainer3D, default_config_3d

    session = _session(args)
    config = config_from_args(args, default_config_3d())
    trainer = Trainer3D(
        session,
        Path(args.out),
        config,
        _settings_from_args(args),
        resume=not args.restart,
        check_views=not args.no_view_check,
    )
    try:
        print(
            f"Training {config.n_keypoints} 3D keypoints from {len(session.cameras)} views "
            f"({', '.join(session.names)}) at {trainer.config.image_size} px, gap "
            f"{trainer.views.gap} frames, on {trainer.device} (from step {trainer.step}).",
            file=sys.stderr,
        )
        bar = progress_bar(trainer.config.steps, "step", initial=trainer.step)
        try:
            for event in trainer.run():
                bar.update(1)
                if event.planned:
                    bar.total = event.total_steps
                    bar.write(
                        f"{event.total_steps} steps: about {event.eta_s / 60:.1f} min to go.",
                        file=sys.stderr,
                    )
                bar.set_postfix(loss=f"{event.losses['total']:.4f}")
        finally:
            bar.close()
    finally:
        trainer.close()
    if trainer.stopped_by is not None:
        raise TrainingStopped(trainer.stopped_by, trainer.step, trainer.checkpoint_path)
    print(trainer.checkpoint_path)
    return 0


def _settings_from_args(args: argparse.Namespace) -> Any:
    """:class:`Settings3D` from ``--design`` and ``--settings3d`` (a resumed run's when unset)."""
    from bkind_model.multiview.settings import Settings3D

    values: dict[str, Any] = {}
    saved = Path(args.out) / "checkpoint.pt"
    if not args.restart and saved.is_file():
        from bkind_model.io.checkpoint import load_checkpoint

        values = dict(load_checkpoint(saved).get("settings3d", {}))
    given = json_object(args.settings3d, "--settings3d", '{"bone_weight": 1.0}')
    values |= given
    if args.design is not None:
        values["design"] = args.design
    return Settings3D.from_dict(values)


def _cmd_extract3d(args: argparse.Namespace) -> int:
    from bkind_model.io.checkpoint import checkpoint_file
    from bkind_model.io.outputs import check_output
    from bkind_model.multiview.extraction import extract_3d

    checkpoint = checkpoint_file(args.checkpoint)
    out = Path(args.out) if args.out else checkpoint.parent / "keypoints3d.h5"
    views = _pairs(args.views, "--views", "--views side=videos/side.mp4").values()
    inputs = [checkpoint, args.calibration, *args.videos, *views]
    check_output(out, inputs, overwrite=args.overwrite)  # before minutes of work
    session = _session(args)
    bar = progress_bar(session.n_frames, "frame")

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        result = extract_3d(
            checkpoint, session, progress=progress, check_views=not args.no_view_check
        )
    finally:
        bar.close()
    print(result.save(out))
    print(json.dumps({"reprojection_px": result.per_view_error()}), file=sys.stderr)
    return 0


def _cmd_evaluate3d(args: argparse.Namespace) -> int:
    from bkind_model.multiview.evaluation import evaluate_3d

    print(json.dumps(evaluate_3d(args.results, args.truth).to_dict(), indent=2))
    return 0


def _cmd_export3d(args: argparse.Namespace) -> int:
    from bkind_model.multiview.export import export_3d

    print(export_3d(args.results, to=args.to, out=args.out, overwrite=args.overwrite))
    return 0


def _add_session_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", help="one video per camera")
    parser.add_argument(
        "--calibration", required=True, help="anipose calibration.toml of the cameras"
    )
    parser.add_argument(
        "--views",
        nargs="+",
        metavar="NAME=PATH",
        help="which video is which camera (default: the file name contains the camera name)",
    )
    parser.add_argument(
        "--offsets",
        nargs="+",
        metavar="NAME=FRAMES",
        help="frames to skip at the start of a view, to synchronise it",
    )
    parser.add_argument(
        "--no-view-check",
        action="store_true",
        help="skip the check that every view sees the animal where the calibration and the "
        "other views put it (it refuses swapped videos and videos of something else)",
    )


def add_3d_commands(sub: Any) -> None:
    """Add the 3D subcommands to ``bkind``'s subparsers."""
    from bkind_model.multiview.settings import Settings3D

    train = sub.add_parser("train3d", help="train 3D keypoints on synchronised, calibrated views")
    _add_session_options(train)
    train.add_argument("--out", required=True, help="run folder (checkpoint.pt goes there)")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument(
        "--design",
        choices=("algebraic", "volumetric"),
        help="triangulated per-view keypoints, or BKinD-3D's voxel cube (default: "
        f"{Settings3D().design})",
    )
    train.add_argument(
        "--settings3d", help="other 3D settings as JSON, e.g. '{\"bone_weight\": 1.0}'"
    )
    add_training_options(train)
    train.set_defaults(func=_cmd_train3d)

    extract = sub.add_parser("extract3d", help="3D keypoints of every synchronised frame")
    extract.add_argument("checkpoint", help="checkpoint file or run folder of `train3d`")
    _add_session_options(extract)
    extract.add_argument("--out", help="3D results .h5 (default: keypoints3d.h5 in the run)")
    add_overwrite_option(extract, "replace an existing output file")
    extract.set_defaults(func=_cmd_extract3d)

    evaluate = sub.add_parser("evaluate3d", help="MPJPE after regression to 3D joints")
    evaluate.add_argument("results", help="keypoints3d.h5 from `extract3d`")
    evaluate.add_argument("truth", help="ground-truth 3D joints (ground_truth_3d.h5)")
    evaluate.set_defaults(func=_cmd_evaluate3d)

    export = sub.add_parser("export3d", help="3D keypoints as CSV or anipose's layout")
    export.add_argument("results", help="keypoints3d.h5 from `extract3d`")
    export.add_argument("--to", default="csv", choices=("csv", "anipose"), help="format")
    export.add_argument("--out", help="output file (default: beside the results)")
    add_overwrite_option(export, "replace an existing output file")
    export.set_defaults(func=_cmd_export3d)
