"""Exports of results files to the formats of neighbouring tools (DeepLabCut today).

DeepLabCut layout: columns ``MultiIndex(scorer, bodyparts, coords)`` with coords
``x, y, likelihood``, one row per frame (integer index), NaN where a keypoint is missing,
stored in HDF5 under the key ``df_with_missing`` (pandas + PyTables, as DeepLabCut writes
it) or as CSV with three header rows. Files are named as DeepLabCut names its
predictions (``<video>DLC_<scorer>.h5``), so napari-deeplabcut and movement find them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bkind_model.errors import ConfigError
from bkind_model.io.atomic import atomic_path, ensure_folder, require_free
from bkind_model.io.results import KeypointResult

SCORER = "bkind"
#: Export formats of :func:`export_results`.
FORMATS = ("dlc",)


def likelihood(confidence: np.ndarray) -> np.ndarray:
    """B-KinD confidence -> a likelihood in [0, 1], as DeepLabCut files hold.

    The confidence is a heatmap's peak relative to a uniform heatmap (1 = uniform,
    larger = sharper); it is written as ``1 - 1 / confidence``: 0 for a uniform heatmap,
    towards 1 for a sharp one, and 1 for points without a confidence (placed by hand).

    Parameters
    ----------
    confidence : ndarray
        ``(T, K)`` confidences; NaN where there is none.

    Returns
    -------
    ndarray
        ``(T, K)`` float64 in [0, 1].
    """
    with np.errstate(divide="ignore"):
        values = np.clip(1.0 - 1.0 / confidence, 0.0, 1.0)
    return np.where(np.isnan(confidence), 1.0, values)


def dlc_dataframe(result: KeypointResult, scorer: str = SCORER) -> pd.DataFrame:
    """Keypoints as a DeepLabCut predictions table.

    Parameters
    ----------
    result : KeypointResult
        ``(T, K, 2)`` keypoints (px) and ``(T, K)`` confidence.
    scorer : str
        Name of the first column level.

    Returns
    -------
    DataFrame
        ``T`` rows, columns ``(scorer, bodyparts, coords)`` with ``x, y, likelihood``.
    """
    values = likelihood(result.confidence)
    values[~np.isfinite(result.keypoints).all(axis=-1)] = np.nan
    table = np.concatenate([result.keypoints, values[..., None]], axis=-1)
    columns = pd.MultiIndex.from_product(
        [[scorer], result.keypoint_names, ["x", "y", "likelihood"]],
        names=["scorer", "bodyparts", "coords"],
    )
    return pd.DataFrame(
        table.reshape(result.n_frames, -1).astype(np.float64),
        columns=columns,
        index=pd.RangeIndex(result.n_frames),
    )


def write_dlc(result: KeypointResult, path: str | Path, scorer: str = SCORER) -> Path:
    """Write keypoints as DeepLabCut predictions, atomically.

    Parameters
    ----------
    result : KeypointResult
        The keypoints.
    path : str or Path
        ``.h5`` (HDF5, key ``df_with_missing``) or ``.csv``.
    scorer : str
        The scorer column level.

    Raises
    ------
    ConfigError
        For another extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".h5", ".csv"):
        raise ConfigError(f"{path}: a DeepLabCut file ends in .h5 or .csv.")
    ensure_folder(path.parent)  # also removes temporary files of a killed export
    frame = dlc_dataframe(result, scorer)
    require_free(path, 2 * frame.memory_usage(deep=True).sum() / 2**20)
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".h5":
            frame.to_hdf(tmp, key="df_with_missing", format="table", mode="w")
        else:
            frame.to_csv(tmp)
    return path


def default_export_path(results: Path, to: str) -> Path:
    """Where :func:`export_results` writes by default: beside the results file.

    ``mouse.bkind.h5`` exported to ``dlc`` becomes ``mouseDLC_bkind.h5``.
    """
    stem = results.name.removesuffix(".h5").removesuffix(".bkind")
    return results.with_name(f"{stem}DLC_{SCORER}.h5")


def export_results(results: str | Path, to: str = "dlc", out: str | Path | None = None) -> Path:
    """Export a results file (``bkind extract``) to another tool's format.

    Parameters
    ----------
    results : str or Path
        The results ``.h5``.
    to : str
        One of :data:`FORMATS`.
    out : str or Path, optional
        Output file (default: :func:`default_export_path`).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        For an unknown format or extension.
    ResultsError
        When ``results`` is not a readable results file.
    """
    if to not in FORMATS:
        raise ConfigError(f"Unknown export format {to!r}; choose one of {', '.join(FORMATS)}.")
    path = Path(results)
    result = KeypointResult.load(path)
    target = Path(out) if out is not None else default_export_path(path, to)
    return write_dlc(result, target)
