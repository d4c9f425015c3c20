"""Exports of results files to the formats of neighbouring tools.

=========  ==========================================  =====================================
``--to``   file (default name beside the results)      read back by
=========  ==========================================  =====================================
``dlc``    ``<stem>DLC_bkind.h5`` (or ``.csv``)          DeepLabCut, napari-deeplabcut,
                                                       movement (``from_dlc_file``)
``sleap``  ``<stem>.analysis.h5`` (SLEAP analysis)       SLEAP, sleap-io, movement
``nwb``    ``<stem>.nwb`` (ndx-pose PoseEstimation)      pynwb + ndx-pose, movement
``nc``     ``<stem>.nc`` (movement's dataset, netCDF)    xarray, movement
``csv``    ``<stem>.keypoints.csv`` (tidy: one row per   pandas, R, a spreadsheet
           frame and keypoint)
=========  ==========================================  =====================================

DeepLabCut layout: columns ``MultiIndex(scorer, bodyparts, coords)`` with coords
``x, y, likelihood``, one row per frame (integer index), NaN where a keypoint is missing,
stored in HDF5 under the key ``df_with_missing`` by the writer of our labels files
(:func:`~bkind_model.io.labels.write_dlc_table`: pandas' fixed format, which the pandas 2 of
DeepLabCut 3.0 and pandas 3 both read) or as CSV with three header rows. Files are named as
DeepLabCut names its predictions (``<video>DLC_<scorer>.h5``), so napari-deeplabcut and movement find them.

SLEAP, NWB and netCDF files are written by movement's own savers from
:meth:`KeypointResult.to_movement` (the optional ``movement`` extra), which already write what
sleap-io, pynwb and movement read back; our DeepLabCut writer stays (it needs only
pandas). The likelihood in every file is :meth:`KeypointResult.likelihoods`, whose
meaning :mod:`bkind_model.pose.likelihood` states. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bkind_model.errors import ConfigError
from bkind_model.io.atomic import atomic_path, ensure_folder, require_free
from bkind_model.io.labels import write_dlc_table
from bkind_model.io.optional import movement_io
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult

SCORER = "bkind"
#: Export formats of :func:`export_results` and the suffix of their default file name.
FORMATS = {
    "dlc": f"DLC_{SCORER}.h5",
    "sleap": ".analysis.h5",
    "nwb": ".nwb",
    "nc": ".nc",
    "csv": ".keypoints.csv",
}
#: File endings each format accepts.
_ENDINGS = {
    "dlc": (".h5", ".csv"),
    "sleap": (".h5",),
    "nwb": (".nwb",),
    "nc": (".nc",),
    "csv": (".csv",),
}


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
    values = result.likelihoods()
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
            write_dlc_table(frame, tmp)
        else:
            frame.to_csv(tmp)
    return path


def tidy_dataframe(result: KeypointResult) -> pd.DataFrame:
    """One row per frame and keypoint: the shape R, pandas and spreadsheets like.

    Returns
    -------
    DataFrame
        Columns ``frame`` (int), ``time_s`` (frame / fps, seconds), ``keypoint`` (name),
        ``x``, ``y`` (px), ``likelihood`` (0-1) and ``confidence`` (the raw heatmap
        confidence); ``T * K`` rows, frame-major.
    """
    n, k = result.n_frames, result.n_keypoints
    frames = np.repeat(np.arange(n), k)
    return pd.DataFrame(
        {
            "frame": frames,
            "time_s": frames / result.fps,
            "keypoint": np.tile(np.array(result.keypoint_names, dtype=object), n),
            "x": result.keypoints[..., 0].reshape(-1).astype(np.float64),
            "y": result.keypoints[..., 1].reshape(-1).astype(np.float64),
            "likelihood": result.likelihoods().reshape(-1),
            "confidence": result.confidence.reshape(-1).astype(np.float64),
        }
    )


def write_export(result: KeypointResult, path: str | Path, to: str) -> Path:
    """Write ``result`` to ``path`` in the format ``to``, atomically.

    Parameters
    ----------
    result : KeypointResult
        The keypoints.
    path : str or Path
        The file; its ending must suit the format (:data:`FORMATS`).
    to : str
        One of :data:`FORMATS`.

    Raises
    ------
    ConfigError
        For an unknown format or a file ending that does not suit it.
    MissingDependencyError
        For sleap, nwb and nc without movement.
    """
    if to not in FORMATS:
        raise ConfigError(f"Unknown export format {to!r}; choose one of {', '.join(FORMATS)}.")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _ENDINGS[to]:
        raise ConfigError(
            f"{path}: a {to} export ends in {' or '.join(_ENDINGS[to])}; rename the output."
        )
    if to == "dlc":
        return write_dlc(result, path)
    ensure_folder(path.parent)  # also removes temporary files of a killed export
    require_free(path, 4 * result.keypoints.nbytes / 2**20 + 1.0)
    if to == "csv":
        frame = tidy_dataframe(result)
        with atomic_path(path, suffix=suffix) as tmp:
            frame.to_csv(tmp, index=False)
        return path
    ds = result.to_movement()
    with atomic_path(path, suffix=suffix) as tmp:
        if to == "sleap":
            movement_io("save_poses").to_sleap_analysis_file(ds, tmp)
        elif to == "nwb":
            _write_nwb(ds, tmp, result)
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def _write_nwb(ds: Any, path: Path, result: KeypointResult) -> None:
    """The NWB conversion of movement, written with pynwb (one individual: one file).

    The session start is the video file's modification time when the video is there (NWB
    requires one; the recording's true start is not known here), else now.
    """
    from datetime import UTC, datetime

    from movement.io.nwb import NWBFileSaveConfig
    from pynwb import NWBHDF5IO

    video = result.video_path
    start = (
        datetime.fromtimestamp(video.stat().st_mtime, tz=UTC)
        if video is not None and video.is_file()
        else datetime.now(tz=UTC)
    )
    config = NWBFileSaveConfig(
        nwbfile_kwargs={
            "session_start_time": start,
            "session_description": f"keypoints discovered by B-KinD in {video or 'a video'}",
            "identifier": (video.stem if video else path.stem) + f"_{SCORER}",
        },
        pose_estimation_kwargs={
            "source_software": SCORER,
            "description": "B-KinD keypoints; confidence is the calibrated likelihood",
        },
    )
    nwbfile = movement_io("save_poses").to_nwb_file(ds, config)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def default_export_path(results: Path, to: str) -> Path:
    """Where :func:`export_results` writes by default: beside the results file.

    ``mouse.bkind.h5`` becomes ``mouseDLC_bkind.h5`` (dlc), ``mouse.analysis.h5``
    (sleap), ``mouse.nwb``, ``mouse.nc`` or ``mouse.keypoints.csv``.
    """
    stem = results.name.removesuffix(".h5").removesuffix(".bkind")
    return results.with_name(stem + FORMATS[to])


def export_results(
    results: str | Path, to: str = "dlc", out: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Export a results file (``bkind extract``) to another tool's format.

    Parameters
    ----------
    results : str or Path
        The results ``.h5``.
    to : str
        One of :data:`FORMATS`.
    out : str or Path, optional
        Output file (default: :func:`default_export_path`).
    overwrite : bool
        Replace an existing output file. It is never the results file or its video.

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
    OutputIsInputError, ExistingFileError
        When the output is an input, or exists without ``overwrite`` (nothing is written).
    """
    if to not in FORMATS:
        raise ConfigError(f"Unknown export format {to!r}; choose one of {', '.join(FORMATS)}.")
    path = Path(results)
    target = Path(out) if out is not None else default_export_path(path, to)
    result = KeypointResult.load(path)
    check_output(target, (path, result.video_path), overwrite=overwrite)
    return write_export(result, target, to)
