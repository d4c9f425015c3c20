"""3D keypoints in the files of neighbouring tools.

* ``csv``: anipose's ``pose-3d`` table (pandas): per keypoint ``<name>_x, _y, _z`` (world
  units), ``_error`` (mean reprojection error over the views, px), ``_ncams`` (views with
  weight), ``_score`` (the largest view weight), then ``fnum`` (synchronised frame).
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
from bkind_model.multiview.results import Result3D

FORMATS = ("csv", "anipose")


def anipose_table(result: Result3D) -> pd.DataFrame:
    """The 3D keypoints as anipose's ``pose-3d`` table (one row per synchronised frame)."""
    columns: dict[str, np.ndarray] = {}
    error = result.reprojection_error.mean(1)  # (T, K)
    for k, name in enumerate(result.keypoint_names):
        for axis, label in enumerate("xyz"):
            columns[f"{name}_{label}"] = result.points[:, k, axis]
        columns[f"{name}_error"] = error[:, k]
        columns[f"{name}_ncams"] = (result.weights[:, :, k] > 0.05).sum(1)
        columns[f"{name}_score"] = result.weights[:, :, k].max(1)
    columns["fnum"] = np.arange(len(result.points))
    return pd.DataFrame(columns)


def export_3d(results: str | Path, to: str = "csv", out: str | Path | None = None) -> Path:
    """Write a 3D results file in another tool's format (atomically).

    Parameters
    ----------
    results : str or Path
        ``keypoints3d.h5`` from extraction.
    to : {"csv", "anipose"}
        anipose's pose-3d CSV, or sleap-anipose's ``points3d.h5``.
    out : str or Path, optional
        Output file (default: beside the results, ``<stem>.csv`` or ``points3d.h5``).
    """
    if to not in FORMATS:
        raise ConfigError(f"unknown 3D export format {to!r}; choose one of {FORMATS}.")
    path = Path(results)
    result = Result3D.load(path)
    if out is None:
        out = path.with_suffix(".csv") if to == "csv" else path.parent / "points3d.h5"
    out = Path(out)
    if to == "csv":
        with atomic_path(out, suffix=".csv") as tmp:
            anipose_table(result).to_csv(tmp, index=False)
    else:
        with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("tracks", data=result.points[:, None].astype(np.float64))
            f.attrs["node_names"] = np.array(result.keypoint_names, dtype=h5py.string_dtype())
    return out
