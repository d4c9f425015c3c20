"""Real-video benchmark: train, extract and evaluate through the ``bkind`` CLI.

Drives the path a user takes on hand-labelled third-party data and prints one JSON line
per dataset on stdout (progress, the CLI's bars and messages go to stderr).

Datasets
--------
``openfield``
    ``shared/data/dlc_openfield``: trained on ``videos/m3v1mp4.mp4``, evaluated on the
    116 labelled PNGs of ``labeled-data/m4s1`` (another session of the same rig) with
    ``CollectedData_Pranav.h5``; body length = median snout-tailbase distance (~117 px).
``mirror``
    ``shared/data/lp_mirror_mouse``: trained on ``videos/test_vid.mp4``, evaluated on the
    90 PNGs named in ``CollectedData.csv``; body length = median nose_bot-tailBase_bot
    distance (306 px). ``img00``, ``img91`` and ``img92`` are unlabelled duplicates and
    are left out. The ``obs*`` bodyparts mark an obstacle, not the animal.
custom
    Any DeepLabCut-labelled folder: ``--labelled-folder DIR --labels FILE --video FILE
    [--name NAME] [--body-axis A B]``. The labelled images need not be frames of the
    video, but must have its frame size.

``--dataset`` defaults to ``all`` (both shared sets) when no custom folder is given, and
to none when one is; ``--dataset all --labelled-folder ...`` runs all three. A shared
set whose files are absent gives ``{"benchmark": "real", "dataset": ..., "skipped":
reason}``.

Steps per dataset
-----------------
1. Training length. By default the CLI's own (``bkind train`` without a length option:
   its time budget, ``DEFAULT_MINUTES``); ``--minutes M`` passes ``--minutes M``;
   ``--steps N`` exactly N steps; ``--quick`` the CLI's ``--preset quick`` (300 steps).
2. Training. One ``bkind train VIDEO --out RUN --restart [LENGTH] [TRAIN_ARGS]`` in a
   subprocess (``python -c "from bkind_model.cli import main; ..."``), all other settings
   the defaults (options in ``--train-args`` come last and win), with checkpoints every
   budget / ``--stages`` minutes of training (or every N / ``--stages`` steps). While it
   runs, every new ``checkpoint.pt`` is copied aside, so the curve has ``--stages``
   (default 3) snapshots at about 1/3, 2/3 and all of the training. This is one
   uninterrupted run, so its last snapshot is exactly what a user's ``bkind train`` gives.
   A snapshot's ``minutes`` is wall-clock time since ``bkind train`` started (frame
   preparation included).
3. Extraction. The labelled images are linked (symlinks) into ``WORK/NAME/labelled/``
   as ``00000_<image>``, ``00001_<image>`` ... in the order of the labels file, so the
   image folder's natural order is the labels' order and only labelled images are read.
   ``bkind extract SNAPSHOT WORK/NAME/labelled --out STAGE.h5`` for every snapshot.
4. Evaluation. :func:`bkind_model.evaluate.regression.evaluate_results` with
   ``folds=2`` (ridge fitted on the first half of the labelled images and tested on the
   second, and the reverse); the blob and mean-pose baselines go through the same code.
   Missing labels are skipped per bodypart and counted (``skipped_labels``).
5. Keypoints on the animal (``on_animal``). Foreground of each labelled image = pixels
   whose gray level differs by more than ``FOREGROUND_THRESHOLD`` (0.1) from the median
   background of the *training video* (100 evenly spaced frames,
   :func:`~bkind_model.frames.background.median_background`), after a binary opening,
   then dilated by 5% of the body length (Euclidean distance). ``fraction`` is the share
   of (image, discovered keypoint) pairs inside it. The mask is checked with the labels:
   ``labels_inside`` is the share of labelled animal points (``obs*`` excluded for
   ``mirror``) inside the same mask and ``mask_area`` the mean share of the image it
   covers; a mask that misses the labels or covers the frame makes ``fraction`` moot
   (e.g. a head-fixed animal that is part of the video's median).
6. Montage. A PNG of 4 labelled images (evenly spaced in label order) with the last
   snapshot's keypoints (coloured discs, :func:`bkind_model.io.overlay.draw_keypoints`)
   and the labels (white crosses) is written to ``--out`` (default ``bench/results/``).

Output
------
One JSON line per dataset with keys ``benchmark`` ("real"), ``dataset``, ``video``,
``images``, ``labels``, ``steps``, ``minutes`` (wall-clock of ``bkind train``),
``budget_minutes``, ``steps_per_s`` (mean over the run), ``train_args``, ``config`` (the resolved config
stored in the last checkpoint), ``body_length_px``, ``n_images``, ``keypoints``,
``keypoints_uncertainty``, ``blob``, ``mean_pose`` (each ``error_px`` and
``error_body_lengths``), ``ratio_to_blob``, ``ratio_to_mean_pose``,
``per_bodypart_body_lengths``, ``animal_only_body_lengths`` (keypoints, blob and mean
pose over the animal's bodyparts, when some are not: ``obs*`` of ``mirror``),
``skipped_labels`` (bodypart -> cells not scored),
``skipped_total``, ``on_animal``, ``curve`` (per snapshot: ``minutes``, ``steps``,
``ratio_to_blob``, ``ratio_to_mean_pose``, ``error_body_lengths``, ``on_animal``),
``montage``, ``warnings`` (warning lines of the CLI runs and of the evaluation) and
``runtime_s``. A dataset that fails gives ``error`` instead of the figures; the exit
status is then 1.

Usage
-----
``python bench/real.py [--dataset openfield|mirror|all] [--labelled-folder DIR --labels
FILE --video FILE --name NAME [--body-axis A B]] [--minutes M | --steps N | --quick]
[--stages S] [--train-args "..."] [--work DIR] [--out DIR]``

``--train-args`` is split like a shell line and appended to ``bkind train`` (e.g.
``"--loss ssim"`` or ``"--static-mask mask.png"``), to compare settings; write
``--train-args=--restart`` (with ``=``) for a single option, which argparse would
otherwise take for one of this script's. ``--work``
keeps the runs, snapshots and results there (default: a temporary folder, deleted at
the end).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
CLI = "import sys; from bkind_model.cli import main; sys.exit(main())"
#: Steps of the warm-up run and the step from which its speed is measured.
#: Dilation of the foreground mask for ``on_animal``, in body lengths.
ON_ANIMAL_DILATION = 0.05
POLL_S = 0.1


@dataclass(frozen=True)
class Dataset:
    """A training video, a folder of labelled images and their labels file."""

    name: str
    video: Path
    folder: Path
    labels: Path
    body_axis: tuple[str, str] | None = None
    not_animal: tuple[str, ...] = ()


def shared_datasets() -> dict[str, Dataset]:
    """The two labelled sets of ``shared/data``."""
    openfield = SHARED / "dlc_openfield"
    mirror = SHARED / "lp_mirror_mouse"
    return {
        "openfield": Dataset(
            "openfield",
            openfield / "videos" / "m3v1mp4.mp4",
            openfield / "labeled-data" / "m4s1",
            openfield / "labeled-data" / "m4s1" / "CollectedData_Pranav.h5",
            ("snout", "tailbase"),
        ),
        "mirror": Dataset(
            "mirror",
            mirror / "videos" / "test_vid.mp4",
            mirror / "labeled-data",
            mirror / "CollectedData.csv",
            ("nose_bot", "tailBase_bot"),
            ("obs_top", "obsHigh_bot", "obsLow_bot"),
        ),
    }


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[real] {message}", file=sys.stderr, flush=True)


# -- the CLI in subprocesses -------------------------------------------------------------


class CliRun:
    """``bkind ARGS`` in a subprocess; its stderr is shown and kept for warning lines."""

    def __init__(self, args: list[str]) -> None:
        log("bkind " + " ".join(shlex.quote(a) for a in args))
        self.process = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.chunks: list[bytes] = []
        self.stdout = b""
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._out.start()

    def _pump(self) -> None:
        for chunk in iter(lambda: self.process.stderr.read1(4096), b""):
            self.chunks.append(chunk)
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

    def _read_stdout(self) -> None:
        self.stdout = self.process.stdout.read()

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> None:
        """Wait for the end; raise RuntimeError with the last stderr line if it failed."""
        rc = self.process.wait()
        self._reader.join()
        self._out.join()
        if rc != 0:
            lines = [line for line in self.stderr_lines() if line.strip()]
            last = lines[-1] if lines else "(no message)"
            raise RuntimeError(f"bkind exited with status {rc}: {last}")

    def stderr_lines(self) -> list[str]:
        text = b"".join(self.chunks).decode("utf-8", "replace")
        return [line.strip() for line in text.replace("\r", "\n").splitlines()]

    def warnings(self) -> list[str]:
        """Lines of stderr that are warnings (Python's, the engine's, the CLI's)."""
        return [line for line in self.stderr_lines() if "warn" in line.lower()]


@dataclass
class Snapshot:
    """A copy of ``checkpoint.pt`` taken while training ran."""

    path: Path
    step: int
    minutes: float


def train(
    video: Path, run: Path, length: list[str], train_args: list[str]
) -> tuple[list[Snapshot], float, list[str]]:
    """Run ``bkind train`` and copy every new checkpoint aside while it runs.

    Returns the snapshots (in step order), the wall-clock seconds of the run and its
    warning lines.
    """
    snapshots = run.parent / f"{run.name}-snapshots"
    shutil.rmtree(snapshots, ignore_errors=True)
    snapshots.mkdir(parents=True)
    checkpoint = run / "checkpoint.pt"
    args = ["train", str(video), "--out", str(run), "--restart", *length, *train_args]
    start = time.perf_counter()
    cli = CliRun(args)
    seen, copies = None, []

    def poll() -> None:
        nonlocal seen
        try:
            stat = checkpoint.stat()
        except FileNotFoundError:
            return
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if key == seen:
            return
        seen = key
        copy = snapshots / f"copy{len(copies):03d}.pt"
        try:
            shutil.copyfile(checkpoint, copy)  # written atomically: never half a file
        except FileNotFoundError:
            seen = None
            return
        copies.append((copy, (time.perf_counter() - start) / 60))

    while cli.running():
        poll()
        time.sleep(POLL_S)
    wall = time.perf_counter() - start
    cli.wait()
    poll()
    from bkind_model.io.checkpoint import load_checkpoint

    found: dict[int, Snapshot] = {}
    for copy, minutes in copies:
        step = int(load_checkpoint(copy)["step"])
        path = copy.with_name(f"step{step:07d}.pt")
        copy.replace(path)
        found.setdefault(step, Snapshot(path, step, minutes))
    return [found[s] for s in sorted(found)], wall, cli.warnings()


def extract(snapshot: Path, images: Path, out: Path) -> list[str]:
    """``bkind extract SNAPSHOT IMAGES --out OUT``; returns its warning lines."""
    cli = CliRun(["extract", str(snapshot), str(images), "--out", str(out)])
    cli.wait()
    return cli.warnings()


# -- labelled images ---------------------------------------------------------------------


def image_of(frame: str, folder: Path) -> Path | None:
    """The image file of a labels row (``labeled-data/vid/img.png``) in ``folder``."""
    relative = Path(frame.replace("\\", "/"))
    for candidate in (
        folder / relative.name,
        folder / relative,
        folder.parent.parent / relative,
        folder.parent / relative,
    ):
        if candidate.is_file():
            return candidate
    return None


def link_labelled(frames: list[str], folder: Path, dest: Path) -> list[Path]:
    """Symlinks to the labelled images in label order; returns the original files.

    Named ``00000_<name>``, ``00001_<name>`` ..., so an image folder's natural order is
    the labels' order; images without a row in the labels file are not linked.
    """
    files = [image_of(frame, folder) for frame in frames]
    lacking = [frame for frame, file in zip(frames, files, strict=True) if file is None]
    if lacking:
        shown = ", ".join(lacking[:5]) + (
            f" (+{len(lacking) - 5} more)" if len(lacking) > 5 else ""
        )
        raise RuntimeError(f"{len(lacking)} labelled images not found in {folder}: {shown}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for i, file in enumerate(files):
        (dest / f"{i:05d}_{file.name}").symlink_to(file.resolve())
    return files


def load_images(folder: Path) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB of an image folder, read by the engine in its order."""
    from bkind_model.io.video import open_video

    source = open_video(folder)
    return np.concatenate([frames for _, frames in source.iter_chunks(64)])


# -- keypoints on the animal -------------------------------------------------------------


@dataclass
class Foreground:
    """Dilated foreground masks of the labelled images and their checks."""

    masks: np.ndarray  # (N, H, W) bool
    area: float
    labels_inside: float | None


def foreground(
    images: np.ndarray, video: Path, joints: np.ndarray, animal: np.ndarray, radius: float
) -> Foreground:
    """Foreground against the training video's median background, dilated by ``radius`` px."""
    from bkind_model.frames.background import median_background, to_gray
    from bkind_model.frames.sampling import evenly_spaced
    from bkind_model.frames.windows import FOREGROUND_THRESHOLD
    from bkind_model.io.video import open_video

    source = open_video(video)
    background = median_background(source[evenly_spaced(source.n_frames, 100)]).gray
    masks = np.zeros(images.shape[:3], bool)
    for i, image in enumerate(images):
        mask = ndimage.binary_opening(np.abs(to_gray(image) - background) > FOREGROUND_THRESHOLD)
        if mask.any():
            masks[i] = ndimage.distance_transform_edt(~mask) <= radius
    points = joints[:, animal]
    inside = inside_masks(masks, points)
    labelled = np.isfinite(points).all(axis=-1)
    share = float(inside[labelled].mean()) if labelled.any() else None
    return Foreground(masks, float(masks.mean()), share)


def inside_masks(masks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, P)`` bool: point ``p`` of image ``n`` lies in ``masks[n]`` (NaN: False)."""
    n, h, w = masks.shape
    finite = np.isfinite(points).all(axis=-1)
    safe = np.where(finite[..., None], points, 0.0)
    cols = np.clip(np.round(safe[..., 0]).astype(int), 0, w - 1)
    rows = np.clip(np.round(safe[..., 1]).astype(int), 0, h - 1)
    return masks[np.arange(n)[:, None], rows, cols] & finite


def on_animal(fg: Foreground, keypoints: np.ndarray) -> dict:
    """Share of discovered keypoints inside the dilated foreground, overall and per keypoint."""
    inside = inside_masks(fg.masks, keypoints)
    return {
        "fraction": round(float(inside.mean()), 4),
        "per_keypoint": [round(float(x), 3) for x in inside.mean(0)],
        "labels_inside": None if fg.labels_inside is None else round(fg.labels_inside, 4),
        "mask_area": round(fg.area, 4),
    }


# -- scores and montage ------------------------------------------------------------------


def score(results: Path, labels) -> tuple[dict, list[str]]:
    """:func:`evaluate_results` (halves), with the warnings it raised."""
    from bkind_model.evaluate.regression import evaluate_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = evaluate_results(results, labels, folds=2)
    return summary, [f"{w.category.__name__}: {w.message}" for w in caught]


def animal_only(summary: dict, animal: np.ndarray) -> dict:
    """Error over the animal's bodyparts only (cells pooled as the engine pools them), BL."""
    out = {}
    for name in ("keypoints", "blob", "mean_pose"):
        s = summary[name]
        per_joint = np.array([np.nan if e is None else e for e in s["per_joint_px"]])
        skipped = np.array(s["skipped_per_joint"])
        tested = (s["n_scored"] + skipped.sum()) / len(skipped)  # test cells per joint
        scored = np.where(np.isfinite(per_joint), tested - skipped, 0)[animal]
        errors = np.nan_to_num(per_joint)[animal]
        total = scored.sum()
        out[name] = (
            float((errors * scored).sum() / total / summary["body_length_px"]) if total else None
        )
    return out


def figures(summary: dict) -> dict:
    """The headline figures of an evaluation summary."""

    def pair(name: str) -> dict:
        s = summary[name]
        return {"error_px": s["error_px"], "error_body_lengths": s["normalised"]}

    kp, mean = summary["keypoints"]["error_px"], summary["mean_pose"]["error_px"]
    length = summary["body_length_px"]
    return {
        "keypoints": pair("keypoints"),
        "keypoints_uncertainty": pair("keypoints_uncertainty"),
        "blob": pair("blob"),
        "mean_pose": pair("mean_pose"),
        "ratio_to_blob": summary["ratio_to_blob"],
        "ratio_to_mean_pose": kp / mean if kp is not None and mean else None,
        "per_bodypart_body_lengths": {
            name: None if e is None else e / length
            for name, e in zip(
                summary["joint_names"], summary["keypoints"]["per_joint_px"], strict=True
            )
        },
    }


def montage(
    images: np.ndarray,
    keypoints: np.ndarray,
    joints: np.ndarray,
    titles: list[str],
    path: Path,
) -> Path:
    """4 images (2 x 2) with discovered keypoints (discs) and labels (white crosses)."""
    from PIL import Image, ImageDraw

    from bkind_model.io.overlay import draw_keypoints

    n, h, w = images.shape[:3]
    chosen = np.unique(np.linspace(0, n - 1, min(4, n)).round().astype(int))
    band = 14
    sheet = Image.new("RGB", (2 * w, 2 * (h + band)), (0, 0, 0))
    radius = max(2.0, w / 160)
    for slot, i in enumerate(chosen):
        drawn = draw_keypoints(images[i], keypoints[i], radius=radius)
        tile = Image.fromarray(drawn)
        pen = ImageDraw.Draw(tile)
        arm = max(3.0, w / 120)
        for x, y in joints[i]:
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                pen.line([(x - arm, y - arm), (x + arm, y + arm)], fill=colour, width=width)
                pen.line([(x - arm, y + arm), (x + arm, y - arm)], fill=colour, width=width)
        x0, y0 = (slot % 2) * w, (slot // 2) * (h + band)
        sheet.paste(tile, (x0, y0 + band))
        ImageDraw.Draw(sheet).text((x0 + 3, y0 + 1), titles[i], fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# -- one dataset -------------------------------------------------------------------------


def missing(dataset: Dataset) -> str | None:
    """Why a dataset cannot run (a file or folder absent), or None."""
    for what, path in (
        ("video", dataset.video),
        ("labelled folder", dataset.folder),
        ("labels", dataset.labels),
    ):
        if not path.exists():
            return f"{what} {path} not found"
    return None


def training_length(args: argparse.Namespace) -> tuple[list[str], float | None]:
    """``bkind train`` options for the length and the snapshots, and the budget (minutes).

    ``--steps N``: N steps, a checkpoint every N / stages steps. ``--quick``: the CLI's
    ``--preset quick``, likewise. Otherwise the CLI's time budget (its default, or
    ``--minutes``), a checkpoint every budget / stages minutes of training.
    """
    from bkind_model.config import DEFAULT_MINUTES, PRESETS

    steps = args.steps
    if steps is None and args.quick:
        steps = int(PRESETS["quick"]["steps"])
    if steps is not None:
        every = str(max(1, math.ceil(steps / args.stages)))
        return [
            "--steps",
            str(steps),
            "--checkpoint-every",
            every,
            "--checkpoint-minutes",
            "1e6",
        ], None
    minutes = args.minutes if args.minutes is not None else DEFAULT_MINUTES
    length = ["--minutes", f"{minutes:g}"] if args.minutes is not None else []
    every = f"{minutes / args.stages * 0.999:g}"  # the last stage ends with the run
    return [*length, "--checkpoint-every", "1000000000", "--checkpoint-minutes", every], minutes


def run_dataset(dataset: Dataset, args: argparse.Namespace, work_root: Path) -> dict:
    """Train, extract, evaluate one dataset; the JSON-ready summary."""
    from bkind_model.io.checkpoint import load_checkpoint
    from bkind_model.io.labels import load_labels
    from bkind_model.io.results import KeypointResult

    began = time.perf_counter()
    head = {"benchmark": "real", "dataset": dataset.name, "video": str(dataset.video)}
    reason = missing(dataset)
    if reason:
        return head | {"skipped": reason}
    work = work_root / dataset.name
    work.mkdir(parents=True, exist_ok=True)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as load_warnings:
        warnings.simplefilter("always")
        labels = load_labels(dataset.labels, body_axis=dataset.body_axis)
    caught += [f"{w.category.__name__}: {w.message}" for w in load_warnings]
    linked = work / "labelled"
    files = link_labelled(labels.frames, dataset.folder, linked)
    log(f"{dataset.name}: {len(files)} labelled images linked in label order into {linked}")

    length, budget = training_length(args)
    snapshots, wall, train_warnings = train(dataset.video, work / "run", length, args.train_args)
    caught += train_warnings
    if not snapshots:
        raise RuntimeError("bkind train wrote no checkpoint")
    config = load_checkpoint(snapshots[-1].path)["config"]

    images = load_images(linked)
    animal = np.array([name not in dataset.not_animal for name in labels.names])
    fg = foreground(
        images, dataset.video, labels.joints, animal, ON_ANIMAL_DILATION * labels.body_length
    )
    curve, last = [], None
    for snap in snapshots:
        out = work / f"step{snap.step:07d}.h5"
        caught += extract(snap.path, linked, out)
        summary, eval_warnings = score(out, labels)
        caught += eval_warnings
        result = KeypointResult.load(out)
        fig = figures(summary)
        point = {
            "minutes": round(snap.minutes, 3),
            "steps": snap.step,
            "ratio_to_blob": fig["ratio_to_blob"],
            "ratio_to_mean_pose": fig["ratio_to_mean_pose"],
            "error_body_lengths": fig["keypoints"]["error_body_lengths"],
            "on_animal": on_animal(fg, result.keypoints)["fraction"],
        }
        curve.append(point)
        log(f"{dataset.name}: {json.dumps(point)}")
        last = (summary, fig, result)
    summary, fig, result = last
    out_dir = Path(args.out)
    titles = [f"{dataset.name} {f.name} step {snapshots[-1].step}" for f in files]
    path = montage(
        images, result.keypoints, labels.joints, titles, out_dir / f"real_{dataset.name}.png"
    )
    return head | {
        "images": str(dataset.folder),
        "labels": str(dataset.labels),
        "steps": snapshots[-1].step,
        "minutes": round(wall / 60, 3),
        "budget_minutes": budget,
        "steps_per_s": snapshots[-1].step / max(60 * snapshots[-1].minutes, 1e-9),
        "train_args": args.train_args,
        "config": config,
        "body_length_px": summary["body_length_px"],
        "n_images": summary["n_frames"],
        **fig,
        "animal_only_body_lengths": animal_only(summary, animal) if not animal.all() else None,
        "skipped_labels": summary["skipped_labels"],
        "skipped_total": summary["skipped_total"],
        "unlabelled_bodyparts": summary["unlabelled_bodyparts"],
        "on_animal": on_animal(fg, result.keypoints),
        "curve": curve,
        "montage": str(path),
        "warnings": list(dict.fromkeys(caught)),
        "runtime_s": round(time.perf_counter() - began, 1),
    }


# -- command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("openfield", "mirror", "all"))
    custom = parser.add_argument_group("a DeepLabCut-labelled folder of your own")
    custom.add_argument("--labelled-folder", help="folder of the labelled images")
    custom.add_argument("--labels", help="CollectedData_*.h5 / .csv")
    custom.add_argument("--video", help="training video (same frame size as the images)")
    custom.add_argument("--name", default="custom", help="dataset name in the output")
    custom.add_argument(
        "--body-axis", nargs=2, metavar=("A", "B"), help="bodyparts whose distance is the body"
    )
    length = parser.add_argument_group("training length")
    length.add_argument(
        "--minutes", type=float, help="time budget (default: the CLI's, `bkind train`)"
    )
    length.add_argument("--steps", type=int, help="training steps (wins over the others)")
    length.add_argument("--quick", action="store_true", help="the CLI's --preset quick")
    parser.add_argument("--stages", type=int, default=3, help="snapshots on the curve")
    parser.add_argument(
        "--train-args", default="", help='extra `bkind train` options, e.g. "--loss ssim"'
    )
    parser.add_argument("--work", help="folder for runs and results (default: temporary)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the montages")
    return parser


def chosen_datasets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Dataset]:
    shared = shared_datasets()
    custom = (args.labelled_folder, args.labels, args.video)
    given = args.dataset or ("all" if not any(custom) else None)
    datasets = list(shared.values()) if given == "all" else [shared[given]] if given else []
    if any(custom):
        if not all(custom):
            parser.error("a custom dataset needs --labelled-folder, --labels and --video")
        axis = tuple(args.body_axis) if args.body_axis else None
        datasets.append(
            Dataset(
                args.name, Path(args.video), Path(args.labelled_folder), Path(args.labels), axis
            )
        )
    return datasets


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.stages < 1:
        parser.error("--stages must be at least 1")
    if args.minutes is not None and args.minutes <= 0:
        parser.error("--minutes must be positive")
    args.train_args = shlex.split(args.train_args)
    datasets = chosen_datasets(args, parser)
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bkind-real-"))
    status = 0
    try:
        for dataset in datasets:
            try:
                line = run_dataset(dataset, args, work_root)
            except Exception as exc:  # one dataset failing must not hide the others
                status = 1
                line = {
                    "benchmark": "real",
                    "dataset": dataset.name,
                    "video": str(dataset.video),
                    "error": f"{type(exc).__name__}: {exc}",
                }
            print(json.dumps(line), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
