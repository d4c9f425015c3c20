"""napari writers: a keypoint Points layer -> DeepLabCut predictions or B-KinD results.

Every file is written to a hidden temporary file beside the target and renamed into place
(:func:`os.replace`), so saving over an existing file replaces it whole or not at all.

DeepLabCut layout: columns ``MultiIndex(scorer, bodyparts, coords)`` with coords
``x, y, likelihood``, one row per frame (integer index), NaN where a keypoint is missing.
Its ``likelihood`` is in [0, 1]; B-KinD's confidence is a heatmap peak relative to a
uniform heatmap (1 = uniform, larger = sharper), written as ``1 - 1 / confidence``
(0 for a uniform heatmap, towards 1 for a sharp one; 1 for points with no confidence,
such as hand-placed ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from bkind_model.io.results import KeypointResult
from napari_bkind._layers import PATH_KEY, RESULT_KEY, points_to_result

SCORER = "bkind"


def dlc_dataframe(result: KeypointResult, scorer: str = SCORER) -> pd.DataFrame:
    """Keypoints as a DeepLabCut predictions table.

    Parameters
    ----------
    result : KeypointResult
        ``(T, K, 2)`` keypoints and ``(T, K)`` confidence.
    scorer : str
        Name of the first column level.

    Returns
    -------
    DataFrame
        ``T`` rows, columns ``(scorer, bodyparts, coords)`` with ``x, y, likelihood``.
    """
    with np.errstate(divide="ignore"):
        likelihood = np.clip(1.0 - 1.0 / result.confidence, 0.0, 1.0)
    missing = ~np.isfinite(result.keypoints).all(axis=-1)
    likelihood = np.where(np.isnan(result.confidence), 1.0, likelihood)
    likelihood[missing] = np.nan
    values = np.concatenate([result.keypoints, likelihood[..., None]], axis=-1)
    columns = pd.MultiIndex.from_product(
        [[scorer], result.keypoint_names, ["x", "y", "likelihood"]],
        names=["scorer", "bodyparts", "coords"],
    )
    return pd.DataFrame(
        values.reshape(result.n_frames, -1).astype(np.float64),
        columns=columns,
        index=pd.RangeIndex(result.n_frames),
    )


def _atomic(path: str, write: Callable[[Path], None]) -> list[str]:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return [str(target)]


def write_dlc_h5(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as DeepLabCut predictions (HDF5, key ``df_with_missing``)."""
    frame = dlc_dataframe(points_to_result(data, meta))
    return _atomic(
        path, lambda tmp: frame.to_hdf(tmp, key="df_with_missing", format="table", mode="w")
    )


def write_dlc_csv(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as DeepLabCut predictions (CSV, 3 header rows)."""
    frame = dlc_dataframe(points_to_result(data, meta))
    return _atomic(path, frame.to_csv)


def write_results(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as a B-KinD results file.

    When the layer came from a results file that stores heatmaps for the same frames,
    the heatmaps and their windows are copied over (streamed, not loaded), so saving over
    the original file keeps them.
    """
    result = points_to_result(data, meta)
    source = meta.get("metadata", {}).get(PATH_KEY)
    stored = meta.get("metadata", {}).get(RESULT_KEY, {})

    def write(tmp: Path) -> None:
        result.save(tmp)
        if source and Path(source).is_file():
            _copy_heatmaps(Path(source), tmp, result.n_frames, stored.get("letterbox"))

    return _atomic(path, write)


def _copy_heatmaps(source: Path, target: Path, n_frames: int, letterbox: dict | None) -> None:
    with h5py.File(source, "r") as src, h5py.File(target, "a") as dst:
        names = ("heatmaps", "windows")
        if letterbox is None or not all(name in src for name in names):
            return
        if src["heatmaps"].shape[0] != n_frames:
            return
        for name in names:
            src.copy(src[name], dst, name=name)
