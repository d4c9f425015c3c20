"""Options shared by ``bkind``'s subcommands: values' types, ``--overwrite``, training.

The types (:func:`whole_number`, :func:`positive_float`, :func:`non_negative_float`,
:func:`probability`, ``seed``) refuse a degenerate value while parsing, with
argparse's one-line error naming the option (exit status 2). ``--overwrite`` is the one
word of every command that replaces files (:mod:`bkind_model.io.outputs` states the rule).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bkind_model.config import (
    ENCODERS,
    PRESETS,
    RECONSTRUCTION_LOSSES,
    Config,
    MaskSettings,
    json_object,
    with_changes,
)

#: Largest seed numpy and scikit-learn take (``2**32 - 1``).
MAX_SEED = 2**32 - 1


def whole_number(
    minimum: int, maximum: int | None = None, what: str | None = None
) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` (to ``maximum``, when given).

    ``what`` describes the value in the error (default: the range).
    """
    if what is None:
        what = (
            f"a whole number >= {minimum}"
            if maximum is None
            else (f"a whole number from {minimum} to {maximum}")
        )

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value

    return whole


#: A whole number >= 1 (counts: steps, frames, keypoints, batch size).
positive_int = whole_number(1)
#: A whole number >= 0 (frame numbers, trail lengths).
non_negative_int = whole_number(0)
#: A random seed: numpy and scikit-learn take 0 to ``2**32 - 1``.
seed = whole_number(0, MAX_SEED, f"a whole number from 0 to {MAX_SEED} (2**32 - 1)")


def _number(text: str, low: float, high: float, *, above: bool, what: str) -> float:
    """``float(text)`` if finite and in ``(low, high]`` (``above``) or ``[low, high]``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    fits = (low < value if above else low <= value) and value <= high
    if not (math.isfinite(value) and fits):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (durations, sizes, rates)."""
    return _number(text, 0.0, math.inf, above=True, what="a finite number > 0")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, 0.0, math.inf, above=False, what="a finite number >= 0")


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    return _number(text, 0.0, 1.0, above=False, what="a number from 0 to 1")


class _DeprecatedForce(argparse.Action):
    """``--force``, the old word of some commands: sets ``overwrite`` with a note."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(
            "bkind: note: --force is now --overwrite, as in every command; --force will go.",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, True)


def add_overwrite_option(
    parser: argparse.ArgumentParser, help: str = "replace existing output files"
) -> None:
    """Add ``--overwrite`` (and the hidden, deprecated ``--force``) to a subcommand."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"{help} (an input of the command is never written over)",
    )
    parser.add_argument(
        "--force", dest="overwrite", action=_DeprecatedForce, nargs=0, help=argparse.SUPPRESS
    )


def config_from_args(args: argparse.Namespace, default: Config | None = None) -> Config:
    """The run's config: the resumed checkpoint's (or ``default``), changed by the options."""
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
    base = Config.from_dict((base or default or Config()).to_dict() | length)
    given = {k: v for k, v in values.items() if v is not None}
    if args.masks is None and args.static_mask is None and args.mask_settings is None:
        given.pop("masks", None)  # no mask option given: keep the base's masks
    more = json_object(args.settings, "--settings", '{"equivariance_weight": 0.1}')
    values = with_changes(base.to_dict(), more | {k: _plain(v) for k, v in given.items()})
    return Config.from_dict(values)


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
    values = json_object(args.mask_settings, "--mask-settings", '{"value": [0, 0.3]}')
    chosen = {"method": args.masks, "use": args.mask_use, "static_mask": args.static_mask}
    return MaskSettings.from_dict(values | {k: v for k, v in chosen.items() if v is not None})


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Add the training and mask options to a subcommand's parser."""
    group = parser.add_argument_group("training")
    group.add_argument("--keypoints", type=positive_int, help="number of keypoints K (default 10)")
    group.add_argument(
        "--image-size",
        type=positive_int,
        help="side of the model input, px (default: from the window's size, 96-128)",
    )
    group.add_argument(
        "--crop-size",
        type=non_negative_float,
        help="side of the window that follows the animal, video px (default: measured; "
        "0: whole frame)",
    )
    group.add_argument(
        "--minutes",
        type=positive_float,
        help=f"time budget of training (default {PRESETS['standard']['minutes']:g}): the steps "
        "are set from the speed measured on the first steps",
    )
    group.add_argument(
        "--steps", type=positive_int, help="exact number of training steps (no budget)"
    )
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="standard: the default time budget; quick: 300 steps (a first look, the demo)",
    )
    group.add_argument("--batch", type=positive_int, help="frame pairs per step")
    group.add_argument("--lr", type=positive_float, help="learning rate")
    group.add_argument("--encoder", choices=ENCODERS, help="encoder architecture")
    group.add_argument(
        "--pretrained",
        help="encoder weights: 'imagenet' (bundled, efficientnet-lite0), a torchvision file or "
        "'torch-cache' (ResNets)",
    )
    group.add_argument(
        "--settings",
        help="any other setting of the run as a JSON object (the Train widget's More "
        "settings), e.g. '{\"frozen_levels\": 2}'; the options above win",
    )
    group.add_argument("--loss", choices=RECONSTRUCTION_LOSSES, help="reconstruction loss")
    group.add_argument(
        "--gap", type=positive_float, help="frame gap (suggested from the video if unset)"
    )
    group.add_argument("--gap-seconds", action="store_true", help="--gap is in seconds")
    group.add_argument("--device", help="auto (default), cpu, cuda, mps")
    group.add_argument("--seed", type=seed, help="random seed")
    group.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    group.add_argument(
        "--checkpoint-every", type=positive_int, help="steps between checkpoints (default 200)"
    )
    group.add_argument(
        "--checkpoint-minutes",
        type=positive_float,
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
