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
pandas); what those savers leave empty is filled here: SLEAP's ``video_path`` and
skeleton, NWB's source video, camera, dimensions, scorer, ``confidence_definition`` and
skeleton (:func:`skeleton`). The netCDF file names its dimensions as movement 0.15-0.16
does and says so (``dimension_names``). The likelihood in every file is
:meth:`KeypointResult.likelihoods`, whose meaning (:func:`confidence_definition`)
:mod:`bkind_model.pose.likelihood` states. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bkind_model import __version__
from bkind_model.errors import ConfigError
from bkind_model.io.atomic import atomic_path, ensure_folder, require_free
from bkind_model.io.labels import write_dlc_table
from bkind_model.io.optional import movement_io
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult
from bkind_model.pose.likelihood import LIKELIHOOD_MEANING
from bkind_model.pose.skeleton import spanning_tree

SCORER = "bkind"
#: Export formats of :func:`export_results` and the suffix of their default file name.
FORMATS = {
    "dlc": f"DLC_{SCORER}.h5",
    "sleap": ".analysis.h5",
    "nwb": ".nwb",
    "nc": ".nc",
    "csv": ".keypoints.csv",
}
#: Frames (evenly spaced) whose keypoint distances give discovered keypoints' skeleton.
SKELETON_FRAMES = 2000
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
            _complete_sleap(tmp, result)
        elif to == "nwb":
            _write_nwb(ds, tmp, result)
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def skeleton(result: KeypointResult) -> list[tuple[int, int]]:
    """The edges written with the keypoints, as pairs of keypoint indices.

    Named bodyparts carry their skeleton (``skeleton`` of the results); discovered
    keypoints get the minimum spanning tree of their median distances over
    :data:`SKELETON_FRAMES` evenly spaced frames (distances within a frame do not depend
    on where the animal is or faces, so this is the tree of their distances in the
    animal's body frame): each keypoint joined to its nearest neighbours, K - 1 edges,
    the shortest first.

    Returns
    -------
    list of (int, int)
        Edges ``(i, j)``, ``i < j`` for the tree; empty when fewer than two keypoints are
        ever found together.
    """
    from bkind_model.io.overlay import skeleton_edges

    if result.metadata.get("skeleton"):
        return skeleton_edges(result.metadata["skeleton"], result.keypoint_names)
    step = max(1, result.n_frames // SKELETON_FRAMES)
    points = np.asarray(result.keypoints[::step], np.float64)  # (T', K, 2)
    distance = np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)  # (T', K, K)
    found = np.isfinite(distance).any(axis=0)
    weights = np.full(distance.shape[1:], np.nan)  # NaN: never found together, no edge
    weights[found] = np.nanmedian(distance[:, found], axis=0)
    return spanning_tree(weights)


def confidence_definition(result: KeypointResult) -> str:
    """What the likelihood written with the keypoints means, in words.

    The ``likelihood_meaning`` stored by extraction; for named bodyparts the probability
    of lying within their radius (:mod:`bkind_model.naming.mapping`); for files from before
    either, the calibrated likelihood :meth:`KeypointResult.likelihoods` computes.
    """
    stored = result.metadata.get("likelihood_meaning")
    if stored:
        return str(stored)
    radius = result.metadata.get("likelihood_radius_px")
    if result.metadata.get("kind") == "named" and radius is not None:
        return (
            f"probability that the bodypart lies within {float(radius):.3g} px of the "
            "prediction, for a Gaussian error with the covariance of the leave-one-out "
            "residuals on the labelled frames (bkind_model.naming.mapping)"
        )
    return LIKELIHOOD_MEANING


def _complete_sleap(path: Path, result: KeypointResult) -> None:
    """Fill what movement's SLEAP saver leaves empty: ``video_path`` and the skeleton.

    Written as SLEAP writes them: ``video_path`` a string, ``edge_names`` ``(E, 2)`` byte
    strings, ``edge_inds`` ``(E, 2)`` int indices into ``node_names``.
    """
    import h5py

    names = result.keypoint_names
    edges = skeleton(result)
    with h5py.File(path, "a") as f:
        for key in ("video_path", "edge_names", "edge_inds"):
            del f[key]
        f.create_dataset("video_path", data=str(result.video_path or ""))
        f.create_dataset(
            "edge_names",
            data=np.array([(names[i].encode(), names[j].encode()) for i, j in edges], "S")
            if edges
            else np.zeros((0, 2), "S1"),
        )
        f.create_dataset("edge_inds", data=np.array(edges, np.int64).reshape(-1, 2))


def _write_nwb(ds: Any, path: Path, result: KeypointResult) -> None:
    """The NWB conversion of movement, completed and written with pynwb (one individual).

    Besides movement's defaults: the video as an external ``ImageSeries`` (its path, size
    and rate) recorded by a camera ``Device``, both linked from the ``PoseEstimation``
    (``source_video``, ``device``) and given in the older fields too (``original_videos``,
    ``dimensions``, which readers of ndx-pose < 0.3 look at); ``scorer`` and the software
    version; each series' ``confidence_definition`` (:func:`confidence_definition`); the
    skeleton's edges (:func:`skeleton`). The session start is the video file's
    modification time when the video is there (NWB requires one; the recording's true
    start is not known here), else now.
    """
    import warnings
    from datetime import UTC, datetime

    from movement.io.nwb import NWBFileSaveConfig
    from pynwb import NWBHDF5IO
    from pynwb.device import Device
    from pynwb.image import ImageSeries

    video = result.video_path
    start = (
        datetime.fromtimestamp(video.stat().st_mtime, tz=UTC)
        if video is not None and video.is_file()
        else datetime.now(tz=UTC)
    )
    name = video.name if video is not None else "the video"
    camera = Device(name="camera", description=f"the camera that recorded {name}")
    size = result.metadata.get("frame_size")  # (H, W) px
    dimensions = None if size is None else [int(size[1]), int(size[0])]  # (width, height)
    series = ImageSeries(
        name="video",
        description=f"{name}, the video the keypoints were found in",
        external_file=[str(video or "")],
        format="external",
        starting_frame=[0],
        rate=result.fps,
        num_samples=result.n_frames,
        dimension=dimensions,
        device=camera,
        unit="n.a.",
    )
    config = NWBFileSaveConfig(
        nwbfile_kwargs={
            "session_start_time": start,
            "session_description": f"keypoints discovered by B-KinD in {video or 'a video'}",
            "identifier": (video.stem if video else path.stem) + f"_{SCORER}",
            "devices": [camera],
            "acquisition": [series],
        },
        pose_estimation_kwargs={
            "source_software": SCORER,
            "source_software_version": __version__,
            "scorer": f"napari-bkind {__version__}",
            "description": "B-KinD keypoints; confidence is the likelihood "
            "(confidence_definition)",
            "device": camera,
            "source_video": series,
            "original_videos": [str(video or "")],
            "dimensions": None if dimensions is None else np.array([dimensions], np.uint16),
        },
        pose_estimation_series_kwargs={"confidence_definition": confidence_definition(result)},
        skeleton_kwargs={"edges": np.array(skeleton(result), np.uint16).reshape(-1, 2)},
    )
    with warnings.catch_warnings():
        # original_videos and dimensions are deprecated in ndx-pose 0.3 for source_video,
        # which is given too; they stay for the readers that look there.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="ndx_pose")
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
