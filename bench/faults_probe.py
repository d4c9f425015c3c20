"""Fault cases of the 2026-12-07 blind probe (issue 21), run by ``bench/faults.py``.

Every row of ``shared/probes/defects-2026-12-07.md`` is a case named ``<area>.<probe ID>``
(``sec.S02``, ``crafted.R-csv-fps_nan``, ``lost.L3-out-ckpt``, ...); cases beyond the
probe's rows carry a label instead of an ID. Areas (the prefixes ``--only`` takes):

=============  ==========================================================================
``sec.``       files that carry code: a pickled attribute in a DeepLabCut ``.h5``, a pickled
               behaviour model. The payload makes a marker folder: ``code_executed`` if it
               exists after the run.
``crafted.``   results files with one attribute or dataset edited (:data:`CRAFTED`), given
               to export, overlay, behaviour, motifs and propose.
``beh.``       behaviour labels edited (:data:`LABEL_EDITS`) and degenerate values.
``naming.``    ``bkind name`` / ``propose``: deep JSON, labels of another video.
``exports.``   ``export`` to NWB / netCDF / DeepLabCut of crafted results.
``overlay.``   degenerate drawing values, the video replaced under the results.
``mv3d.``      ``extract3d`` / ``evaluate3d``: crafted calibrations (:data:`CALIBRATIONS`),
               views swapped, a test pattern as a camera, crafted 3D truth
               (:data:`TRUTH_EDITS`).
``lost.``      ``--out`` naming an input or an existing file: a clear error and the file's
               bytes unchanged (an existing file is only replaced with ``--overwrite``).
``many.``      many-video extraction on dask (few cases: a LocalCluster costs seconds).
``torchrun.``  ``--distributed`` with a fake torchrun environment and no master.
``ckfile.``    checkpoints with one entry replaced (:data:`CKPT_EDITS`, :data:`CKPT3D_EDITS`).
``bomb.``      JSON / TOML nesting bombs in options and files.
``memory.``    a 2000x2000 video under a 4 GiB address-space limit.
``fifo.``      a named pipe given as a video: a clear error, never a hang.
=============  ==========================================================================

The fixtures are built on demand like the others (``_fx_*`` methods of
:class:`ProbeFixtures`); crafted files are generated from the edit tables, one builder each.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faults import (
    FRAMES,
    C,
    Case,
    Ctx,
    Fixtures,
    Result,
    check_results,
    load_torch,
    option,
    results_equal,
    sha,
    tiny,
)

DEPTH = 20_000  # nesting of the JSON and TOML bombs (an HDF5 attribute holds 64 KiB)
MARKER = "$tmp/PWNED"  # the folder a planted payload makes
RENDEZVOUS_VARIABLE = "BKIND_RENDEZVOUS_TIMEOUT_S"  # bkind_model.train.distributed
HANG_TIMEOUT = 60.0  # seconds before a case that should fail fast counts as a hang
MV = "$mv/cam_a.mp4 $mv/cam_b.mp4 $mv/cam_c.mp4"
CAL = "--calibration $mv/calibration.toml"
BOMB = "[" * DEPTH + "]" * DEPTH


# ==========================================================================================
# Edit tables: each entry makes one crafted file from a good one
# ==========================================================================================


def _replace(f: Any, name: str, data: Any) -> None:
    """Replace dataset ``name`` of an open HDF5 file."""
    del f[name]
    f[name] = data


def _per_frame(f: Any, cut: Callable[[np.ndarray], np.ndarray]) -> None:
    """Apply ``cut`` to every per-frame dataset of a results file."""
    for name in [n for n in f if f[n].ndim and f[n].shape[0] == f.attrs["n_frames"]]:
        _replace(f, name, cut(f[name][()]))


def _no_keypoints(f: Any) -> None:
    _per_frame(f, lambda a: a[:, :0])
    f.attrs["keypoint_names"] = np.array([], dtype="S1")


def _no_frames(f: Any) -> None:
    _per_frame(f, lambda a: a[:0])
    f.attrs["n_frames"] = f.attrs["frames_done"] = 0


def _inf_keypoints(f: Any) -> None:
    keypoints = f["keypoints"][()]
    keypoints[5, 0, 0] = np.inf
    keypoints[6, 1, 1] = -1e30
    f["keypoints"][...] = keypoints


def _attr(name: str, value: Any) -> Callable[[Any], None]:
    return lambda f: f.attrs.__setitem__(name, value)


def _names(edit: Callable[[list[str]], list[str]]) -> Callable[[Any], None]:
    def apply(f: Any) -> None:
        import h5py

        names = [str(n) for n in f.attrs["keypoint_names"]]
        f.attrs["keypoint_names"] = np.array(edit(names), dtype=h5py.string_dtype())

    return apply


def _dataset(name: str, make: Callable[[np.ndarray], Any]) -> Callable[[Any], None]:
    return lambda f: _replace(f, name, make(f[name][()]))


def _likelihood(make: Callable[[tuple[int, int]], np.ndarray]) -> Callable[[Any], None]:
    """Write dataset ``likelihood`` made from the ``(T, K)`` shape (the base has none)."""

    def apply(f: Any) -> None:
        if "likelihood" in f:
            del f["likelihood"]
        f["likelihood"] = make(f["keypoints"].shape[:2])

    return apply


#: Results-file edits: label -> (the field at fault, the edit of the open HDF5 file).
CRAFTED: dict[str, tuple[str, Callable[[Any], None]]] = {
    "conf_shape": ("confidence", _dataset("confidence", lambda a: a[:-1])),
    "fps_nan": ("fps", _attr("fps", float("nan"))),
    "fps_neg": ("fps", _attr("fps", -30.0)),
    "fps_str": ("fps", _attr("fps", "abc")),
    "fps_zero": ("fps", _attr("fps", 0.0)),
    "fps_huge": ("fps", _attr("fps", 1e300)),
    "jsonbomb": ("config", _attr("config", BOMB)),
    "kp_3col": ("keypoints", _dataset("keypoints", lambda a: np.concatenate([a, a[..., :1]], -1))),
    "kp_inf": ("keypoints", _inf_keypoints),
    "kp_allnan": ("keypoints", _dataset("keypoints", lambda a: np.full_like(a, np.nan))),
    "kp_scalar_str": ("keypoints", _dataset("keypoints", lambda a: b"garbage")),
    "kpnames_dup": ("keypoint_names", _names(lambda names: [names[0]] * len(names))),
    "kpnames_short": ("keypoint_names", _names(lambda names: names[:-1])),
    "likelihood_bad": ("likelihood", _likelihood(lambda tk: np.full(tk, 7.0, np.float32))),
    "likelihood_shape": ("likelihood", _likelihood(lambda tk: np.ones((tk[0], tk[1] - 1)))),
    "zero_kp": ("keypoints", _no_keypoints),
    "zero_frames": ("frames", _no_frames),
}


def _distortions(text: str, values: str) -> str:
    """Every camera's ``distortions = [...]`` replaced by ``values``."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("distortions"):
            out.append(f"distortions = {values}")
            skipping = not line.rstrip().endswith("]")
        elif skipping:
            skipping = line.strip() != "]"
        else:
            out.append(line)
    return "\n".join(out) + "\n"


#: Calibration edits: label -> (the field at fault, the edit of the TOML text).
CALIBRATIONS: dict[str, tuple[str, Callable[[str], str]]] = {
    "fisheye": (
        "fisheye",
        lambda t: t.replace('name = "cam_b"', 'name = "cam_b"\nfisheye = true'),
    ),
    "dist_huge": ("distortions", lambda t: _distortions(t, "[1e6, 1e6, 1e6, 1e6, 1e6]")),
    "deep": ("deep.toml", lambda t: t + f"\n[bomb]\nnested = {BOMB}\n"),
}


#: 3D ground-truth edits: label -> (the field at fault, the edit of the open HDF5 file).
TRUTH_EDITS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "allnan": ("joints3d", _dataset("joints3d", lambda a: np.full_like(a, np.nan))),
    "fps_str": ("fps", _attr("fps", "abc")),
    "jointnames_int": ("joint_names", _dataset("joint_names", lambda a: np.arange(len(a)))),
    "othercams": ("camera", _dataset("camera_names", lambda a: np.array([b"x", b"y", b"z"]))),
    "shape2d": ("joints3d", _dataset("joints3d", lambda a: a[..., :2])),
}


def _first_weight(state: dict) -> None:
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = state["model"][key].tolist()


#: 2D checkpoint edits: label -> (the entry at fault, the edit of the loaded state).
CKPT_EDITS: dict[str, tuple[str, Callable[[dict], Any]]] = {
    "key_background_garbage": ("background", lambda s: s.update(background="garbage")),
    "key_letterbox_garbage": ("letterbox", lambda s: s.update(letterbox="garbage")),
    "key_step_garbage": ("step", lambda s: s.update(step="garbage")),
    "weight_list": ("model", _first_weight),
}

#: 3D checkpoint edits, as :data:`CKPT_EDITS`.
CKPT3D_EDITS: dict[str, tuple[str, Callable[[dict], Any]]] = {
    "cameras_garbage": ("cameras", lambda s: s.update(cameras="garbage")),
    "letterboxes_garbage": ("letterboxes", lambda s: s.update(letterboxes="garbage")),
}


def _float_frames(table: Any) -> None:
    table["start_frame"] = table["start_frame"] + 0.9
    table["end_frame"] = table["end_frame"] - 0.3


def _huge_end(table: Any) -> None:
    table.loc[table.index[-1], "end_frame"] = 10**13


#: Behaviour-interval edits: label -> (the field at fault, the edit of the pandas table).
LABEL_EDITS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "oneclass": ("behaviour", lambda t: t.__setitem__("behaviour", t["behaviour"].iloc[0])),
    "huge_end": ("end_frame", _huge_end),
    "float_frames": ("start_frame", _float_frames),
    "empty_video": ("video", lambda t: t.__setitem__("video", float("nan"))),
}


# ==========================================================================================
# Fixtures
# ==========================================================================================


class ProbeFixtures(Fixtures):
    """The probe's fixtures beside :class:`faults.Fixtures`' (one class, one namespace)."""

    def _ffmpeg(self, name: str, *args: str) -> Path:
        from bkind_model.io.ffmpeg import ffmpeg_exe

        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args, str(path)]
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        return path

    # -- 2D: behaviour sample, crafted results and checkpoints -----------------------------

    def _fx_beh_results(self) -> Path:
        """The long sample's true joints as a named results file (600 frames)."""
        from bkind_model.behaviour.synthetic import ground_truth_result

        return ground_truth_result(self["long"]).save(self.root / "long.bkind.h5")

    def _fx_beh_labels(self) -> Path:
        from bkind_model.behaviour.labels import write_intervals
        from bkind_model.behaviour.synthetic import ground_truth_labels

        return write_intervals(self.root / "beh_good.csv", ground_truth_labels(self["long"]))

    def _fx_beh_model(self) -> Path:
        path = self.root / "behaviour.skops"
        argv = ["behaviour", "train", self["beh_results"], "--labels", self["beh_labels"]]
        self.cli([*argv, "--out", str(path)], "behaviour train")
        return path

    def _fx_beh_ethogram(self) -> Path:
        """The model's ethogram of the clean results (what crafted ones are compared with)."""
        path = self.root / "ethogram_clean.csv"
        argv = ["behaviour", "predict", self["beh_model"], self["beh_results"]]
        self.cli([*argv, "--out", str(path)], "behaviour predict")
        return path

    def _crafted(self, label: str) -> Path:
        import h5py

        path = self.root / "crafted" / f"{label}.bkind.h5"
        path.parent.mkdir(exist_ok=True)
        shutil.copy(self["beh_results"], path)
        with h5py.File(path, "a") as f:
            CRAFTED[label][1](f)
        return path

    def _labels_edited(self, label: str) -> Path:
        import pandas as pd

        table = pd.read_csv(self["beh_labels"])
        LABEL_EDITS[label][1](table)
        path = self.root / "beh_labels" / f"{label}.csv"
        path.parent.mkdir(exist_ok=True)
        table.to_csv(path, index=False)
        return path

    def _ckpt_edited(self, label: str) -> Path:
        (self.root / "ck").mkdir(exist_ok=True)
        return self._edited_ckpt(f"ck/{label}.pt", CKPT_EDITS[label][1])

    def _fx_fps5(self) -> Path:
        """The sample video at 5 fps (its results say 30)."""
        return self._sample("fps5.mp4", height=96, width=96, n_frames=60, fps=5.0, seed=1)

    def _fx_huge(self) -> Path:
        """150 frames of the long sample scaled to 2000x2000."""
        args = ["-i", self["long"], "-frames:v", "150", "-vf", "scale=2000:2000"]
        return self._ffmpeg("huge2000.mp4", *args, "-c:v", "libx264", "-preset", "ultrafast")

    def _fx_deep_json(self) -> Path:
        path = self.root / "bp_deep.json"
        path.write_text(BOMB)
        return path

    def _fx_other_labels(self) -> Path:
        """Labels of another video (its rows name ``other``): same joints, other frames."""
        text = (
            Path(self["labels_csv"])
            .read_text()
            .replace("labeled-data/video/", "labeled-data/other/")
        )
        path = self.root / "CollectedData_other.csv"
        path.write_text(text)
        return path

    # -- 3D ------------------------------------------------------------------------------

    def _fx_mv(self) -> Path:
        """Three synchronised 96x96 views of 24 frames, calibration, 3D truth."""
        from bkind_model.multiview.synthetic import MultiViewConfig, write_multiview_sample

        folder = self.root / "mv"
        write_multiview_sample(folder, MultiViewConfig(n_frames=24, image_size=(96, 96)))
        return folder

    def _fx_run3d(self) -> Path:
        run = self.root / "run3d"
        views = [str(Path(self["mv"]) / f"cam_{c}.mp4") for c in "abc"]
        calibration = ["--calibration", str(Path(self["mv"]) / "calibration.toml")]
        options = tiny(keypoints="4", batch="2")
        self.cli(["train3d", *views, *calibration, "--out", str(run), *options], "train3d")
        return run

    def _fx_k3d(self) -> Path:
        path = self.root / "keypoints3d.h5"
        views = [str(Path(self["mv"]) / f"cam_{c}.mp4") for c in "abc"]
        calibration = ["--calibration", str(Path(self["mv"]) / "calibration.toml")]
        self.cli(["extract3d", self["run3d"], *views, *calibration, "--out", str(path)], "x3d")
        return path

    def _fx_mv_noise(self) -> Path:
        """The session with camera c replaced by a test pattern of its size and length."""
        folder = self.root / "mv_noise"
        folder.mkdir(exist_ok=True)
        for camera in "ab":
            shutil.copy(Path(self["mv"]) / f"cam_{camera}.mp4", folder)
        pattern = ["-f", "lavfi", "-i", "testsrc=size=96x96:rate=30", "-frames:v", "24"]
        self._ffmpeg("mv_noise/noise_cam_c.mp4", *pattern, "-pix_fmt", "yuv420p")
        return folder

    def _calibration(self, label: str) -> Path:
        text = (Path(self["mv"]) / "calibration.toml").read_text()
        path = self.root / "cal" / f"{label}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(CALIBRATIONS[label][1](text))
        return path

    def _truth(self, label: str) -> Path:
        import h5py

        path = self.root / "gt3d" / f"{label}.h5"
        path.parent.mkdir(exist_ok=True)
        shutil.copy(Path(self["mv"]) / "ground_truth_3d.h5", path)
        with h5py.File(path, "a") as f:
            TRUTH_EDITS[label][1](f)
        return path

    def _ckpt3d_edited(self, label: str) -> Path:
        import torch

        state = load_torch(Path(self["run3d"]) / "checkpoint.pt")
        CKPT3D_EDITS[label][1](state)
        run = self.root / "ck3" / label  # a run folder, as the probe gave it
        run.mkdir(parents=True, exist_ok=True)
        torch.save(state, run / "checkpoint.pt")
        return run


def _builders() -> None:
    """One ``_fx_<prefix>_<label>`` fixture per entry of the edit tables."""
    tables = [
        ("cr", CRAFTED, ProbeFixtures._crafted),
        ("bl", LABEL_EDITS, ProbeFixtures._labels_edited),
        ("ck", CKPT_EDITS, ProbeFixtures._ckpt_edited),
        ("ck3", CKPT3D_EDITS, ProbeFixtures._ckpt3d_edited),
        ("cal", CALIBRATIONS, ProbeFixtures._calibration),
        ("gt3", TRUTH_EDITS, ProbeFixtures._truth),
    ]
    for prefix, table, build in tables:
        for label in table:
            setattr(ProbeFixtures, f"_fx_{prefix}_{label}", functools.partialmethod(build, label))


_builders()


# ==========================================================================================
# Planted payloads and checks of a successful run
# ==========================================================================================


class Payload:
    """Unpickled, it makes the case's marker folder (harmless proof that code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def plant_model_pickle(protocol: int) -> Callable[[Ctx], None]:
    """``$tmp/evil.pkl``: a behaviour model that is a pickle with a payload."""

    def plant(ctx: Ctx) -> None:
        payload = Payload(Path(ctx.sub(MARKER)))
        (ctx.tmp / "evil.pkl").write_bytes(pickle.dumps(payload, protocol=protocol))

    return plant


def plant_dlc_pickle(ctx: Ctx) -> None:
    """``$tmp/CollectedData_evil.h5``: DeepLabCut labels whose ``pandas_type`` is a pickle.

    PyTables unpickles a string attribute that ends with ``.`` (every pickle does).
    """
    import h5py

    path = ctx.tmp / "CollectedData_evil.h5"
    shutil.copy(ctx.fx["labels_h5"], path)
    payload = pickle.dumps(Payload(Path(ctx.sub(MARKER))), protocol=0)
    with h5py.File(path, "a") as f:
        f["df_with_missing"].attrs["pandas_type"] = np.bytes_(payload)


def plant_chunk(garbage: bool) -> Callable[[Ctx], None]:
    """A leftover chunk of ``$tmp/out/video.bkind.h5``: garbage bytes or zeroed arrays."""

    def plant(ctx: Ctx) -> None:
        folder = ctx.tmp / "out" / ".video.bkind.h5.chunks"
        folder.mkdir(parents=True)
        (folder / "checkpoint.sha256").write_text(sha(Path(ctx.fx["ckpt"])) or "")
        chunk = folder / f"{0:09d}-{30:09d}.npz"
        if garbage:
            chunk.write_bytes(b"PK\x03\x04 a chunk cut by a crash")
            return
        k = int(load_torch(Path(ctx.fx["ckpt"]))["config"]["n_keypoints"])
        zeros = {"keypoints": (30, k, 2), "confidence": (30, k), "covariance": (30, k, 2, 2)}
        arrays = {name: np.zeros(shape, np.float32) for name, shape in zeros.items()}
        np.savez(chunk, on_animal=np.zeros((30, k), np.uint8), **arrays)

    return plant


def replaced_video(key: str) -> Callable[[Ctx], None]:
    """``$tmp/r.h5``: the results, whose recorded video ``$tmp/video.mp4`` is fixture ``key``."""

    def plant(ctx: Ctx) -> None:
        import h5py

        shutil.copy(ctx.fx["results"], ctx.tmp / "r.h5")
        shutil.copy(ctx.fx[key], ctx.tmp / "video.mp4")
        with h5py.File(ctx.tmp / "r.h5", "a") as f:
            f.attrs["video_path"] = str(ctx.tmp / "video.mp4")

    return plant


def no_infinite_values(ctx: Ctx, res: Result) -> str | None:
    """The CSV written holds no infinite or absurd (beyond 1e9) number."""
    import pandas as pd

    table = pd.read_csv(ctx.output_of(res))
    values = table.select_dtypes("number").to_numpy(np.float64)
    if (np.abs(values[~np.isnan(values)]) > 1e9).any():
        return "infinite or absurd numbers written"
    return None


def agrees_with_clean(ctx: Ctx, res: Result) -> str | None:
    """Where both ethograms decided, they agree on >= 90% of frames (a few bad frames)."""
    import pandas as pd

    crafted, clean = pd.read_csv(ctx.output_of(res)), pd.read_csv(ctx.fx["beh_ethogram"])
    skip = ("video", "frame")
    names = [c for c in clean.columns if c not in skip and not c.endswith("_probability")]
    a, b = crafted[names].to_numpy(np.float64), clean[names].to_numpy(np.float64)
    decided = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    if decided.sum() < 0.9 * len(b):
        return f"only {int(decided.sum())} of {len(b)} frames decided"
    same = (a[decided].argmax(1) == b[decided].argmax(1)).mean()
    return None if same >= 0.9 else f"agrees with the clean ethogram on {same:.0%} of frames"


def results_in_folder(count: int) -> Callable[[Ctx, Result], str | None]:
    """``--out`` holds ``count`` valid results files (one per distinct video given)."""

    def check(ctx: Ctx, res: Result) -> str | None:
        folder = ctx.tmp / (option(res.argv, "--out") or "")
        files = sorted(folder.glob("*.bkind.h5"))
        if len(files) != count:
            return f"{len(files)} results files in --out, {count} wanted"
        return next((p for p in (check_results(f, FRAMES["video"]) for f in files) if p), None)

    return check


def same_results_as(key: str) -> Callable[[Ctx, Result], str | None]:
    """``--out``'s ``video.bkind.h5`` equals fixture ``key`` (a sequential extraction)."""

    def check(ctx: Ctx, res: Result) -> str | None:
        folder = ctx.tmp / (option(res.argv, "--out") or "")
        return results_equal(folder / "video.bkind.h5", Path(ctx.fx[key]))

    return check


# ==========================================================================================
# The cases
# ==========================================================================================


def _crafted_case(name: str, command: str, label: str, expect: str = "error", **more: Any) -> Case:
    """A command on a crafted results file; the message names the file or the field."""
    argv = command.replace("{cr}", f"$cr_{label}")
    return C(name, expect, argv, f"{label}.bkind.h5", CRAFTED[label][0], **more)


EXPORT_CSV = "export {cr} --to csv --out $tmp/out.csv"
OVERLAY = "overlay {cr} --start 0 --stop 20 --out $tmp/ov.mp4"
PREDICT = "behaviour predict $beh_model {cr} --out $tmp/eth.csv"
TRAIN_BEH = "behaviour train {cr} --labels $beh_labels --out $tmp/m.skops"
MOTIFS = "motifs {cr} -k 3 --out $tmp/mot.csv"
PROPOSE = "propose {cr} -n 3"

#: (case, command template, crafted label, expectation, check of a success).
CRAFTED_ROWS: list[tuple[str, str, str, str, Any]] = [
    *[
        (f"crafted.R-csv-{label}", EXPORT_CSV, label, "error", None)
        for label in (
            "conf_shape fps_nan fps_neg fps_str fps_zero jsonbomb kp_3col kp_scalar_str "
            "kpnames_dup kpnames_short likelihood_bad likelihood_shape zero_kp"
        ).split()
    ],
    ("crafted.R-csv-kp_inf", EXPORT_CSV, "kp_inf", "either", no_infinite_values),
    ("crafted.R-ov-jsonbomb", OVERLAY, "jsonbomb", "error", None),
    ("crafted.R-ov-kp_3col", OVERLAY, "kp_3col", "error", None),
    ("crafted.B-pr-allnan", PREDICT, "kp_allnan", "error", None),
    ("crafted.B-pr-inf", PREDICT, "kp_inf", "either", agrees_with_clean),
    ("crafted.B-pr-zeroframes", PREDICT, "zero_frames", "error", None),
    ("crafted.B-pr-fpsnan", PREDICT, "fps_nan", "error", None),
    ("crafted.B-pr-fpshuge", PREDICT, "fps_huge", "error", None),
    ("crafted.M-allnan", MOTIFS, "kp_allnan", "error", None),
    ("crafted.M-inf", MOTIFS, "kp_inf", "either", no_infinite_values),
    ("crafted.M-fpsnan", MOTIFS, "fps_nan", "error", None),
    ("crafted.B-tr-allnan", TRAIN_BEH, "kp_allnan", "error", None),
    ("crafted.B-tr-inf", TRAIN_BEH, "kp_inf", "either", None),
    ("crafted.B-tr-fpsnan", TRAIN_BEH, "fps_nan", "error", None),
    ("crafted.P-inf", PROPOSE, "kp_inf", "either", None),
    ("crafted.P-zero", PROPOSE, "zero_frames", "error", None),
    ("exports.E-fpszero-nwb", "export {cr} --to nwb --out $tmp/e.nwb", "fps_zero", "error", None),
    ("exports.E-fpsnan-nc", "export {cr} --to nc --out $tmp/e.nc", "fps_nan", "error", None),
    ("exports.E-fpsneg-nc", "export {cr} --to nc --out $tmp/e.nc", "fps_neg", "error", None),
    ("exports.E-dupnames-nc", "export {cr} --to nc --out $tmp/e.nc", "kpnames_dup", "error", None),
    ("exports.E-zero-kp", "export {cr} --to dlc --out $tmp/e.h5", "zero_kp", "error", None),
]

#: (case, option, value, the rest of the command) of degenerate values; all refused.
DEGENERATE: list[tuple[str, str, str, str]] = [
    ("beh.M-winhuge", "--window-s", "1e9", "motifs $beh_results --out $tmp/m.csv"),
    ("beh.M-seedneg", "--seed", "-1", "motifs $beh_results -k 3 --out $tmp/m.csv"),
    ("beh.motifs_k0", "-k", "0", "motifs $beh_results --out $tmp/m.csv"),
    ("beh.motifs_window_nan", "--window-s", "nan", "motifs $beh_results --out $tmp/m.csv"),
    ("beh.B-tr-winhuge", "--window-s", "1e9", TRAIN_BEH.replace("{cr}", "$beh_results")),
    ("beh.B-tr-seedneg", "--seed", "-1", TRAIN_BEH.replace("{cr}", "$beh_results")),
    ("beh.smooth_neg", "--smooth-s", "-1", TRAIN_BEH.replace("{cr}", "$beh_results")),
    ("beh.threshold_2", "--threshold", "2", PREDICT.replace("{cr}", "$beh_results")),
    ("naming.P-seedneg", "--seed", "-1", "propose $results -n 3"),
    ("naming.propose_n0", "-n", "0", "propose $results"),
    ("overlay.O-radius0", "--radius", "0", "overlay $results --stop 10 --out $tmp/o.mp4"),
    ("overlay.O-radiusneg", "--radius", "-5", "overlay $results --stop 10 --out $tmp/o.mp4"),
    ("overlay.O-radiusnan", "--radius", "nan", "overlay $results --stop 3 --out $tmp/o.mp4"),
    ("overlay.O-minlik2", "--min-likelihood", "2", "overlay $results --stop 10 --out $tmp/o.mp4"),
    ("overlay.scale0", "--scale", "0", "overlay $results --stop 3 --out $tmp/o.mp4"),
    ("overlay.trail_neg", "--trail", "-1", "overlay $results --stop 3 --out $tmp/o.mp4"),
    ("overlay.stop_before_start", "--start", "20", "overlay $results --stop 10 --out $tmp/o.mp4"),
    ("many.D-chunk0", "--chunk-frames", "0", "extract $run_good $video $video2 --out $tmp/o"),
    ("many.D-chunkneg", "--chunk-frames", "-5", "extract $run_good $video $video2 --out $tmp/o"),
    ("many.D-workersneg", "--workers", "-2", "extract $run_good $video $video2 --out $tmp/o"),
]

#: Seeds: a negative one may be refused or used; either way no traceback.
EITHER = {"beh.M-seedneg", "beh.B-tr-seedneg", "naming.P-seedneg"}

#: (case, command, the file it must not change, its copy made first): outputs onto inputs
#: or onto existing files; each must refuse and keep the file's bytes.
LOST_ROWS: list[tuple[str, str, str, tuple[str, str] | None]] = [
    ("lost.E-self", "export $tmp/self.bkind.h5 --to dlc --out $tmp/self.bkind.h5",
     "self.bkind.h5", ("$results", "self.bkind.h5")),
    ("lost.E-overwrite-user", "export $results --to csv --out $tmp/CollectedData_copy.csv",
     "CollectedData_copy.csv", ("$labels_csv", "CollectedData_copy.csv")),
    ("lost.L3-out-ckpt", f"extract3d $tmp/run {MV} {CAL} --out $tmp/run/checkpoint.pt",
     "run/checkpoint.pt", ("$run3d", "run")),
    ("lost.L3-out-gt", f"extract3d $run3d {MV} {CAL} --out $tmp/gt_copy.h5",
     "gt_copy.h5", ("$mv/ground_truth_3d.h5", "gt_copy.h5")),
    ("lost.L3-out-video",
     f"extract3d $run3d $tmp/cam_a.mp4 $mv/cam_b.mp4 $mv/cam_c.mp4 {CAL} --out $tmp/cam_a.mp4",
     "cam_a.mp4", ("$mv/cam_a.mp4", "cam_a.mp4")),
    ("lost.L3-out-calib",
     f"extract3d $run3d {MV} --calibration $tmp/calcopy.toml --out $tmp/calcopy.toml",
     "calcopy.toml", ("$mv/calibration.toml", "calcopy.toml")),
    ("lost.L3-export3d-self", "export3d $tmp/k3self.h5 --to anipose --out $tmp/k3self.h5",
     "k3self.h5", ("$k3d", "k3self.h5")),
    ("lost.L3-export3d-csv-over", "export3d $k3d --to csv --out $tmp/cd2.csv",
     "cd2.csv", ("$labels_csv", "cd2.csv")),
    ("lost.L2-extract-out-ckpt", "extract $tmp/run $video --out $tmp/run/checkpoint.pt",
     "run/checkpoint.pt", ("$run_good", "run")),
    ("lost.L2-extract-out-video", "extract $run_good $tmp/vself.mp4 --out $tmp/vself.mp4",
     "vself.mp4", ("$video", "vself.mp4")),
    ("lost.L2-extract-out-labels", "extract $run_good $video --out $tmp/cdcopy.h5",
     "cdcopy.h5", ("$labels_h5", "cdcopy.h5")),
    ("lost.P-overwrite-png", "propose $results -n 3 --extract-to $tmp/lab",
     "lab", None),
    ("lost.name_out_existing", "name $results $labels_csv --out $tmp/named.h5",
     "named.h5", ("$labels_h5", "named.h5")),
    ("lost.motifs_out_results", "motifs $tmp/r.h5 --out $tmp/r.h5",
     "r.h5", ("$beh_results", "r.h5")),
    ("lost.overlay_out_video", "overlay $results --video $tmp/v.mp4 --stop 3 --out $tmp/v.mp4",
     "v.mp4", ("$video", "v.mp4")),
]  # fmt: skip


def torchrun_env(timeout: str) -> tuple[tuple[str, ...], ...]:
    """``prep`` of rank 1 of 2 whose master (port 1) never answers; the wait in seconds."""
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1"}
    env |= {"MASTER_PORT": "1", RENDEZVOUS_VARIABLE: timeout}
    return tuple(("env", key, value) for key, value in env.items())


def _png_folder(ctx: Ctx) -> None:
    """``$tmp/lab``: a labelled-data folder where every frame's PNG exists, drawn by a user."""
    from PIL import Image

    folder = ctx.tmp / "lab"
    folder.mkdir()
    for frame in range(FRAMES["video"]):
        Image.new("L", (4, 4), frame).save(folder / f"img{frame:02d}.png")


def lost_cases() -> list[Case]:
    cases = []
    for name, argv, kept, copy in LOST_ROWS:
        prep = (("copy", copy[0], f"$tmp/{copy[1]}"),) if copy else ()
        setup = _png_folder if name == "lost.P-overwrite-png" else None
        culprit = Path(kept).name
        cases.append(
            C(
                name,
                "error",
                argv,
                culprit,
                "overwrite",
                prep=prep,
                guard=(f"$tmp/{kept}",),
                setup=setup,
            )
        )
    return cases


def probe_cases() -> list[Case]:
    """Every row of the probe's defect table, and a few neighbours of them."""
    sec = {"marker": MARKER, "needs": ("labels_h5",)}
    evil = "$tmp/CollectedData_evil.h5"
    cases = [
        # -- code in files -------------------------------------------------------------
        *[
            C(name, "error", "behaviour predict $tmp/evil.pkl $beh_results --out $tmp/e.csv",
              "evil.pkl", setup=plant_model_pickle(protocol), marker=MARKER)
            for name, protocol in (("sec.S01", pickle.DEFAULT_PROTOCOL), ("sec.S01-protocol0", 0))
        ],
        C("sec.S02", "error", f"evaluate $results {evil}", "CollectedData_evil.h5",
          setup=plant_dlc_pickle, **sec),
        C("sec.S03", "error", f"name $results {evil} --out $tmp/s.named.bkind.h5",
          "CollectedData_evil.h5", setup=plant_dlc_pickle, **sec),
        C("sec.S04", "error", f"propose $results -n 3 --exclude {evil}",
          "CollectedData_evil.h5", setup=plant_dlc_pickle, **sec),
        # -- behaviour labels ----------------------------------------------------------
        *[
            C(f"beh.B-tr-{label}", "error",
              f"behaviour train $beh_results --labels $bl_{label} --out $tmp/m.skops",
              f"{label}.csv", field)
            for label, (field, _) in LABEL_EDITS.items()
        ],
        # -- naming and proposals ------------------------------------------------------
        C("naming.N-bpdeep", "error",
          "name $results $labels_csv --bodyparts $deep_json --out $tmp/o.named.bkind.h5",
          "bp_deep.json"),
        C("naming.P-exclude-other", "error", "propose $results -n 3 --exclude $other_labels",
          "CollectedData_other.csv"),
        # -- the video replaced under the results --------------------------------------
        C("overlay.O-replaced-samegeom", "error", "overlay $tmp/r.h5 --stop 5 --out $tmp/m.mp4",
          "video.mp4", setup=replaced_video("video2"), needs=("results", "video2")),
        C("overlay.O-replaced-otherfps", "error", "overlay $tmp/r.h5 --stop 5 --out $tmp/m.mp4",
          "video.mp4", "fps", setup=replaced_video("fps5"), needs=("results", "fps5")),
        # -- 3D --------------------------------------------------------------------------
        *[
            C(f"mv3d.C-x3-{label}", "error",
              f"extract3d $run3d {MV} --calibration $cal_{label} --out $tmp/o.h5",
              f"{label}.toml", field, "calibration")
            for label, (field, _) in CALIBRATIONS.items()
        ],
        C("mv3d.V3-x3-noise", "error",
          f"extract3d $run3d $mv_noise/cam_a.mp4 $mv_noise/cam_b.mp4 "
          f"$mv_noise/noise_cam_c.mp4 {CAL} --out $tmp/o.h5", "noise_cam_c.mp4", "cam_c"),
        C("mv3d.V3-x3-views-swap", "error",
          f"extract3d $run3d {MV} {CAL} --views cam_a=$mv/cam_b.mp4 cam_b=$mv/cam_a.mp4 "
          "--out $tmp/o.h5", "cam_a", "cam_b"),
        C("mv3d.R4-views-swap", "error",
          f"extract3d $run3d {MV} {CAL} --views cam_b=$mv/cam_c.mp4 cam_c=$mv/cam_b.mp4 "
          "--out $tmp/o.h5", "cam_b", "cam_c"),
        *[
            C(f"mv3d.GT-{label}", "error", f"evaluate3d $k3d $gt3_{label}", f"{label}.h5", field)
            for label, (field, _) in TRUTH_EDITS.items()
        ],
        # -- checkpoints ---------------------------------------------------------------
        *[
            C(f"ckfile.CK-x-{label}", "error", f"extract $ck_{label} $video --out $tmp/o.h5",
              f"{label}.pt", field)
            for label, (field, _) in CKPT_EDITS.items()
        ],
        *[
            C(f"ckfile.CK3-x-{label}", "error", f"extract3d $ck3_{label} {MV} {CAL} --out $tmp/o.h5",
              label, field)
            for label, (field, _) in CKPT3D_EDITS.items()
        ],
        # -- nesting bombs in options --------------------------------------------------
        C("bomb.mask_settings", "error",
          ["train", "$video", "--out", "$tmp/run", *tiny(), "--mask-settings", BOMB],
          "mask-settings"),
        C("bomb.settings3d", "error",
          ["train3d", *MV.split(), *CAL.split(), "--out", "$tmp/run", *tiny(),
           "--settings3d", BOMB], "settings3d"),
        # -- many videos on dask -------------------------------------------------------
        C("many.D-samename", "either",
          "extract $run_good $tmp/a/video.mp4 $tmp/b/video.mp4 --workers 1 --out $tmp/out",
          "video.mp4", prep=(("copy", "$video", "$tmp/a/video.mp4"),
                             ("copy", "$video2", "$tmp/b/video.mp4")),
          check=results_in_folder(2), timeout=240),
        C("many.D-same2", "either", "extract $run_good $video $video --workers 1 --out $tmp/out",
          "video.mp4", check=results_in_folder(1), timeout=240),
        C("many.DK-corrupt-chunk", "either",
          "extract $run_good $video --workers 1 --chunk-frames 30 --out $tmp/out",
          "000000000-000000030.npz", setup=plant_chunk(garbage=True),
          check=same_results_as("results"), needs=("ckpt",), timeout=240),
        C("many.DK-corrupt-rerun", "either",
          "extract $run_good $video2 $video --workers 1 --chunk-frames 30 --out $tmp/out",
          "000000000-000000030.npz", setup=plant_chunk(garbage=True),
          check=results_in_folder(2), needs=("ckpt",), timeout=240),
        C("many.DK-crafted-chunk", "either",
          "extract $run_good $video --workers 1 --chunk-frames 30 --out $tmp/out",
          "000000000-000000030.npz", setup=plant_chunk(garbage=False),
          check=same_results_as("results"), needs=("ckpt",), timeout=240),
        *[
            C(f"many.D-sched-{label}", "error",
              ["extract", "$run_good", "$video", "$video2", "--scheduler", address,
               "--out", "$tmp/o"], "scheduler", address, timeout=HANG_TIMEOUT)
            for label, address in (("dead", "tcp://127.0.0.1:1"), ("garbage", "no such thing"),
                                   ("http", "http://127.0.0.1:9/"))
        ],
        # -- torchrun without a master, hangs, memory ----------------------------------
        C("torchrun.TR-fake-env", "error",
          f"train $video --out $tmp/run --distributed {' '.join(tiny())}",
          "MASTER_ADDR", "127.0.0.1", "rendezvous", timeout=HANG_TIMEOUT,
          prep=torchrun_env("5")),
        C("torchrun.timeout_garbage", "error",
          f"train $video --out $tmp/run --distributed {' '.join(tiny())}", RENDEZVOUS_VARIABLE,
          timeout=HANG_TIMEOUT, prep=torchrun_env("abc")),
        C("memory.RS-huge150-train", "either", f"train $huge --out $tmp/run {' '.join(tiny())}",
          "huge2000.mp4", "memory", memory=4 << 30, timeout=300),
        C("fifo.FIFO-overlay", "error", "overlay $results --video $tmp/fifo.mp4 --out $tmp/o.mp4",
          "fifo.mp4", prep=(("fifo", "$tmp/fifo.mp4"),), timeout=HANG_TIMEOUT),
        C("fifo.FIFO-train", "error", f"train $tmp/fifo.mp4 --out $tmp/run {' '.join(tiny())}",
          "fifo.mp4", prep=(("fifo", "$tmp/fifo.mp4"),), timeout=HANG_TIMEOUT),
    ]  # fmt: skip
    for name, command, label, expect, check in CRAFTED_ROWS:
        cases.append(_crafted_case(name, command, label, expect, check=check))
    for name, opt, value, command in DEGENERATE:
        expect = "either" if name in EITHER else "error"
        word = opt.lstrip("-").split("-")[0]  # "window" of --window-s, as a message says it
        cases.append(C(name, expect, [*command.split(), opt, value], opt, word))
    return [*cases, *lost_cases()]
