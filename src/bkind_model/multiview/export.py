"""3D keypoints in the files of neighbouring tools.

* ``csv``: anipose's ``pose-3d`` table (what ``anipose triangulate`` writes, read by
  anipose's ``project-2d`` and ``label-combined`` and by movement's
  ``from_anipose_file``): per keypoint ``<name>_x, _y, _z`` (world units), ``_error``
  (reprojection error, px: each view's own estimate against the 3D point's projection,
  mean over the views used), ``_ncams`` (views used: positive weight and a finite
  estimate; NaN below two, as anipose), ``_score`` (the smallest 2D score, 0-1, of the
  views used); then ``M_00 .. M_22`` and ``center_0 .. 2``, anipose's alignment of the
  world axes (the identity and zeros: bkind writes the calibration's own frame), and
  ``fnum`` (synchronised frame).
* ``anipose``: the ``points3d.h5`` of sleap-anipose: a dataset ``tracks`` of shape
  ``(T, 1, K, 3)`` (frames, animals, nodes, xyz), world units.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from bkind_model.errors import ConfigError
from bkind_model.io.atomic import atomic_path
from bkind_model.io.outputs import check_output
from bkind_model.multiview.results import Result3D

FORMATS = ("csv", "anipose")


def anipose_table(result: Result3D) -> pd.DataFrame:
    """The 3D keypoints as anipose's ``pose-3d`` table (one row per synchronised frame).

    Columns in anipose's order (see the module); ``_error``, ``_ncams`` and ``_score``
    are NaN where fewer than two views were used, as anipose writes them.
    """
    assert result.scores is not None
    used = (result.weights > 0) & np.isfinite(result.detected).all(-1)  # (T, V, K)
    ncams = used.sum(1).astype(np.float64)  # (T, K)
    enough = ncams >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(used, result.reprojection_error, 0.0).sum(1) / ncams
    score = np.where(used, result.scores, np.inf).min(1)
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(result.keypoint_names):
        for axis, label in enumerate("xyz"):
            columns[f"{name}_{label}"] = result.points[:, k, axis]
        columns[f"{name}_error"] = np.where(enough[:, k], error[:, k], np.nan)
        columns[f"{name}_ncams"] = np.where(enough[:, k], ncams[:, k], np.nan)
        columns[f"{name}_score"] = np.where(enough[:, k], score[:, k], np.nan)
    n = len(result.points)
    identity = np.eye(3)
    for i in range(3):
        for j in range(3):
            columns[f"M_{i}{j}"] = np.full(n, identity[i, j])
    for i in range(3):
        columns[f"center_{i}"] = np.zeros(n)
    columns["fnum"] = np.arange(n)
    return pd.DataFrame(columns)


def export_3d(
    results: str | Path, to: str = "csv", out: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Write a 3D results file in another tool's format (atomically).

    Parameters
    ----------
    results : str or Path
        ``keypoints3d.h5`` from extraction.
    to : {"csv", "anipose"}
        anipose's pose-3d CSV, or sleap-anipose's ``points3d.h5``.
    out : str or Path, optional
        Output file (default: beside the results, ``<stem>.csv`` or ``points3d.h5``).
    overwrite : bool
        Replace an existing output file; it is never the results file
        (:func:`bkind_model.io.outputs.check_output`).
    """
    if to not in FORMATS:
        raise ConfigError(f"unknown 3D export format {to!r}; choose one of {FORMATS}.")
    path = Path(results)
    if out is None:
        out = path.with_suffix(".csv") if to == "csv" else path.parent / "points3d.h5"
    out = check_output(out, (path,), overwrite=overwrite)
    result = Result3D.load(path)
    if to == "csv":
        with atomic_path(out, suffix=".csv") as tmp:
            anipose_table(result).to_csv(tmp, index=False)
    else:
        with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("tracks", data=result.points[:, None].astype(np.float64))
            f.attrs["node_names"] = np.array(result.keypoint_names, dtype=h5py.string_dtype())
    return out
