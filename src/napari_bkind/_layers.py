"""Results <-> napari layer data: the one place where keypoints become layers and back.

Layers made here (as ``(data, kwargs, layer_type)`` tuples, so readers and widgets share
them):

* keypoints: Points ``(frame, y, x)``, one row per keypoint and frame, features
  ``keypoint`` (name, categorical), ``likelihood`` (0-1, what
  :mod:`bkind_model.pose.likelihood` states), ``confidence`` (the raw heatmap
  confidence) and the covariance terms ``cov_xx``, ``cov_xy``, ``cov_yy`` (px^2);
  coloured by the ``keypoint`` feature through a colour cycle (as napari-deeplabcut and
  movement colour theirs), so a point added by hand takes its keypoint's colour; points
  below a likelihood threshold are drawn as rings; a point added by hand gets NaN
  likelihood, confidence and covariance (it is saved as placed by hand);
* trajectories: Tracks ``(track_id, frame, y, x)``, one track per keypoint;
* heatmaps: a lazy ``(T, H, W)`` dask Image placed on the video frame, computed only for
  the frames napari shows, from the low-resolution heatmaps of a results file.

Coordinates: napari puts pixel centres at integer positions, as the engine does, so
video pixel ``(x, y)`` is layer position ``(y, x)`` with no offset.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np
import pandas as pd
from scipy import ndimage

from bkind_model.errors import BKindError
from bkind_model.io.results import KeypointResult
from napari_bkind._palette import rgba
from napari_bkind._trajectories import keypoint_tracks

LayerData = tuple[Any, dict[str, Any], str]

#: Axis labels of videos, keypoints and heatmaps: napari names the time slider after them.
AXES = ("frame", "y", "x")

#: Metadata keys of keypoint layers.
RESULT_KEY = "bkind_result"  # the results' metadata (keypoint_names, n_frames, video_path ...)
PATH_KEY = "bkind_results_path"  # the results file the layer came from, if any
GROUP_KEY = "bkind_group"  # shared by the Points, Tracks and heatmap layers of one result
THRESHOLD_KEY = "bkind_threshold"  # likelihood below which points are drawn as rings

#: Likelihood below which points are drawn as rings when a layer is made: the cut-off
#: DeepLabCut (pcutoff), napari-deeplabcut and movement users apply.
LIKELIHOOD_CUTOFF = 0.6
#: Standard deviations spanned by a covariance ellipse's semi-axes.
ELLIPSE_SIGMAS = 2.0
COV_COLUMNS = ("cov_xx", "cov_xy", "cov_yy")


class KeypointLayerError(BKindError):
    """A layer cannot be read as keypoints (not a ``ValueError``: napari's save would hide it)."""


def likelihood_symbols(likelihood: np.ndarray, threshold: float) -> np.ndarray:
    """``(N,)`` marker of each point: a ring below ``threshold``, a disc otherwise.

    Points without a likelihood (NaN: placed by hand) are discs.
    """
    low = np.asarray(likelihood, np.float64) < threshold
    return np.where(low, "ring", "disc")


def keypoint_points(
    keypoints: np.ndarray,
    names: list[str],
    *,
    frames: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    likelihood: np.ndarray | None = None,
    covariance: np.ndarray | None = None,
    frame_size: tuple[int, int] | None = None,
    name: str = "keypoints",
    metadata: dict[str, Any] | None = None,
) -> LayerData:
    """Keypoints of many frames as one Points layer.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) px; rows with NaN are left out.
    names : list of str
        The K keypoint names.
    frames : ndarray, optional
        ``(T,)`` frame number of each row of ``keypoints`` (default ``0 .. T-1``).
    confidence : ndarray, optional
        ``(T, K)`` confidence (NaN when not given).
    likelihood : ndarray, optional
        ``(T, K)`` likelihood in [0, 1] (NaN when not given).
    covariance : ndarray, optional
        ``(T, K, 2, 2)`` covariance over (x, y) in px^2 (NaN when not given).
    frame_size : tuple of int, optional
        ``(H, W)`` of the video, to size the points.
    name : str
        Layer name.
    metadata : dict, optional
        Layer metadata (keypoint layers carry :data:`RESULT_KEY` and :data:`GROUP_KEY`).

    Returns
    -------
    LayerData
        ``(data (N, 3) [frame, y, x], kwargs, "points")``.
    """
    n_rows, n_keypoints = keypoints.shape[:2]
    frames = np.arange(n_rows) if frames is None else np.asarray(frames)
    missing = np.full((n_rows, n_keypoints), np.nan, np.float32)
    confidence = missing if confidence is None else confidence
    likelihood = missing if likelihood is None else likelihood
    if covariance is None:
        covariance = np.full((n_rows, n_keypoints, 2, 2), np.nan, np.float32)
    ids = np.tile(np.arange(n_keypoints, dtype=np.int16), n_rows)
    xy = keypoints.reshape(-1, 2)
    data = np.column_stack([np.repeat(frames, n_keypoints), xy[:, 1], xy[:, 0]])
    keep = np.isfinite(xy).all(axis=1)
    cov = covariance.reshape(-1, 2, 2)[keep].astype(np.float32)
    chance = likelihood.reshape(-1)[keep].astype(np.float32)
    ids = ids[keep]
    features = pd.DataFrame(
        {
            "keypoint": pd.Categorical.from_codes(ids, categories=list(names)),
            "likelihood": chance,
            "confidence": confidence.reshape(-1)[keep].astype(np.float32),
            "cov_xx": cov[:, 0, 0],
            "cov_xy": cov[:, 0, 1],
            "cov_yy": cov[:, 1, 1],
        }
    )
    size = max(4.0, 0.012 * max(frame_size)) if frame_size else 5.0
    kwargs = {
        "name": name,
        "features": features,
        # napari's defaults would copy the last point's values onto one added by hand.
        "feature_defaults": {"keypoint": names[0]} | dict.fromkeys(features.columns[1:], np.nan),
        "face_color": "keypoint",
        "face_color_cycle": list(rgba(n_keypoints)),
        "border_color": "white",
        "border_width": 0.1,
        "border_width_is_relative": True,
        "symbol": likelihood_symbols(chance, LIKELIHOOD_CUTOFF),
        "size": size,
        "metadata": (metadata or {}) | {THRESHOLD_KEY: LIKELIHOOD_CUTOFF},
        "axis_labels": AXES,
    }
    return data[keep], kwargs, "points"


class HeatmapFrames:
    """The heatmaps of a results file as an array-like ``(T, H, W)`` float32 on the video.

    Frame ``t`` is read from the file when asked for: each keypoint's low-resolution
    heatmap is scaled to peak 1, the K maps are combined by their maximum, and the result
    is placed (bilinear) on the video frame through the input window of frame ``t``.

    Parameters
    ----------
    path : str or Path
        A results file written with heatmaps (``heatmaps`` and ``windows`` datasets).
    letterbox : dict
        The results' letterbox (``metadata['letterbox']``).
    """

    def __init__(self, path: str | Path, letterbox: dict) -> None:
        # The geometry module imports torch (~400 MB): only viewers showing heatmaps pay it.
        from bkind_model.frames.letterbox import Letterbox
        from bkind_model.model.keypoints import normalised_grid

        self.path = Path(path)
        self.letterbox = Letterbox.from_dict(letterbox)
        with h5py.File(self.path, "r") as f:
            n_frames, _, height, width = f["heatmaps"].shape
        self.shape = (n_frames, *self.letterbox.source_size)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3
        xs, ys = normalised_grid(height, width)
        self._first_pixels = np.stack([xs[:2].numpy(), ys[:2].numpy()], axis=1)  # (2, [u, v])

    def frame(self, t: int) -> np.ndarray:
        """``(H, W)`` float32 combined heatmap of frame ``t`` on the video, in [0, 1]."""
        with h5py.File(self.path, "r") as f:
            maps = f["heatmaps"][t].astype(np.float32)
            window = f["windows"][t].astype(np.float64)
        peak = maps.max(axis=(1, 2), keepdims=True)
        combined = (maps / np.where(peak > 0, peak, 1.0)).max(axis=0)
        # Heatmap pixels (0, 0) and (1, 1) on the video give the affine placement.
        first, second = self.letterbox.to_source(self._first_pixels, window[None])
        step = second - first  # video px per heatmap px along (x, y)
        return ndimage.affine_transform(
            combined,
            1.0 / step[::-1],
            offset=-first[::-1] / step[::-1],
            output_shape=self.shape[1:],
            order=1,
            cval=0.0,
        ).astype(np.float32)

    def __getitem__(self, key: tuple | slice | int) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        indices = np.arange(self.shape[0])[key[0]]
        stack = np.stack([self.frame(int(t)) for t in np.atleast_1d(indices)])
        stack = stack[(slice(None), *key[1:])]
        return stack[0] if np.ndim(indices) == 0 else stack


def heatmap_image(
    path: str | Path, result: KeypointResult, name: str, metadata: dict
) -> LayerData | None:
    """The heatmaps of a results file as a lazy Image layer, or None if it has none.

    Parameters
    ----------
    path : str or Path
        The results file.
    result : KeypointResult
        Its contents (loaded without heatmaps).
    name : str
        Layer name.
    metadata : dict
        Layer metadata.

    Returns
    -------
    LayerData or None
        ``(dask (T, H, W) float32, kwargs, "image")``.
    """
    with h5py.File(path, "r") as f:
        stored = "heatmaps" in f and "windows" in f
    if not stored or "letterbox" not in result.metadata:
        return None
    frames = HeatmapFrames(path, result.metadata["letterbox"])
    stat = Path(path).stat()
    data = da.from_array(
        frames,
        chunks=(1, *frames.shape[1:]),
        name=f"bkind-heatmaps-{Path(path).resolve()}-{stat.st_mtime_ns}-{stat.st_size}",
        meta=np.empty((0, 0, 0), np.float32),
        asarray=False,
    )
    kwargs = {
        "name": name,
        "colormap": "inferno",
        "blending": "additive",
        "contrast_limits": (0.0, 1.0),
        "opacity": 0.7,
        "metadata": metadata,
        "axis_labels": AXES,
    }
    return data, kwargs, "image"


def result_layers(result: KeypointResult, path: str | Path | None = None) -> list[LayerData]:
    """Points, Tracks and (when stored) heatmap layers of a result.

    Parameters
    ----------
    result : KeypointResult
        Keypoints of a video.
    path : str or Path, optional
        The results file it was loaded from (needed for heatmaps).

    Returns
    -------
    list of LayerData
    """
    stem = Path(path).name.removesuffix(".h5") if path else "keypoints"
    group = {GROUP_KEY: uuid.uuid4().hex}
    metadata = group | {
        RESULT_KEY: result.metadata | {"n_frames": result.n_frames},
        PATH_KEY: str(path) if path else None,
    }
    frame_size = result.metadata.get("frame_size")
    layers = [
        keypoint_points(
            result.keypoints,
            result.keypoint_names,
            confidence=result.confidence,
            likelihood=result.likelihoods(),
            covariance=result.covariance,
            frame_size=tuple(frame_size) if frame_size is not None else None,
            name=f"{stem} keypoints",
            metadata=metadata,
        ),
        keypoint_tracks(result.keypoints, name=f"{stem} trajectories", metadata=group),
    ]
    heatmaps = heatmap_image(path, result, f"{stem} heatmaps", group) if path else None
    return layers + ([heatmaps] if heatmaps else [])


def is_keypoint_layer(metadata: dict) -> bool:
    """Whether a layer's metadata marks it as keypoints made by :func:`result_layers`."""
    return RESULT_KEY in metadata


def points_to_result(data: np.ndarray, meta: dict[str, Any]) -> KeypointResult:
    """A keypoint Points layer (as napari hands it to writers) -> a :class:`KeypointResult`.

    Parameters
    ----------
    data : ndarray
        ``(N, 3)`` points ``(frame, y, x)``.
    meta : dict
        The layer's state: ``features`` with a ``keypoint`` column (name of each point;
        napari-deeplabcut's ``label`` column is taken instead when there is none),
        optional ``likelihood``, ``confidence`` and ``cov_*`` columns, and ``metadata``
        (the results' metadata under :data:`RESULT_KEY` when the layer came from a
        result). A point with a position but no likelihood was placed by hand: its
        likelihood is 1.

    Returns
    -------
    KeypointResult
        ``(T, K, 2)`` keypoints with NaN where a keypoint has no point on a frame.

    Raises
    ------
    KeypointLayerError
        If the layer has no ``keypoint`` (or ``label``) feature, is not
        ``(frame, y, x)``, or holds two points of one keypoint on one frame.
    """
    data = np.asarray(data, dtype=np.float64)
    features = pd.DataFrame(meta.get("features", {}))
    if "keypoint" not in features and "label" in features:  # a napari-deeplabcut layer
        features = features.rename(columns={"label": "keypoint"})
    if "keypoint" not in features or data.ndim != 2 or data.shape[1] != 3:
        raise KeypointLayerError(
            f"Layer {meta.get('name', '')!r} is not a keypoint layer: it needs points "
            "(frame, y, x) and a 'keypoint' (or napari-deeplabcut 'label') feature naming "
            "each point's keypoint."
        )
    stored = dict(meta.get("metadata", {}).get(RESULT_KEY, {}))
    labels = features["keypoint"].astype(str).to_numpy()
    names = list(stored.get("keypoint_names") or pd.unique(labels))
    names += [label for label in pd.unique(labels) if label not in names]
    frames = np.round(data[:, 0]).astype(int)
    n_frames = max(int(stored.get("n_frames", 0)), int(frames.max(initial=-1)) + 1)
    ids = pd.Categorical(labels, categories=names).codes.astype(int)
    if len(np.unique(frames * len(names) + ids)) < len(ids):
        raise KeypointLayerError(
            f"Layer {meta.get('name', '')!r} has two points of one keypoint on one frame; "
            "delete one of them before saving."
        )
    shape = (n_frames, len(names))
    keypoints = np.full((*shape, 2), np.nan, np.float32)
    keypoints[frames, ids] = data[:, [2, 1]]
    confidence = np.full(shape, np.nan, np.float32)
    if "confidence" in features:
        confidence[frames, ids] = features["confidence"].to_numpy(np.float32)
    likelihood = np.full(shape, np.nan, np.float32)
    if "likelihood" in features:
        likelihood[frames, ids] = features["likelihood"].to_numpy(np.float32)
    placed = np.isfinite(keypoints).all(axis=-1) & np.isnan(likelihood)
    likelihood[placed] = 1.0  # placed (or moved in from a tool without one) by hand
    covariance = np.full((*shape, 2, 2), np.nan, np.float32)
    if all(column in features for column in COV_COLUMNS):
        xx, xy, yy = (features[column].to_numpy(np.float32) for column in COV_COLUMNS)
        covariance[frames, ids] = np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], -2)
    metadata = stored | {"keypoint_names": names, "n_frames": n_frames}
    return KeypointResult(keypoints, confidence, covariance, metadata, likelihood=likelihood)


def frame_points(
    data: np.ndarray, features: pd.DataFrame, frame: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points of one frame of a keypoint layer.

    Returns
    -------
    yx : ndarray
        ``(n, 2)`` positions (y, x) px.
    ids : ndarray
        ``(n,)`` keypoint id (code of the ``keypoint`` feature).
    covariance : ndarray
        ``(n, 2, 2)`` covariance over (x, y), px^2.
    """
    rows = np.nonzero(np.round(data[:, 0]) == frame)[0]
    table = features.iloc[rows]
    xx, xy, yy = (table[column].to_numpy(np.float64) for column in COV_COLUMNS)
    covariance = np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], -2)
    ids = table["keypoint"].cat.codes.to_numpy()
    return data[rows, 1:], ids, covariance


def covariance_ellipses(yx: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Ellipses of ``ELLIPSE_SIGMAS`` standard deviations as napari ellipse corners.

    Parameters
    ----------
    yx : ndarray
        ``(n, 2)`` centres (y, x) px.
    covariance : ndarray
        ``(n, 2, 2)`` covariance over (x, y), px^2 (rows with NaN are left out).

    Returns
    -------
    ndarray
        ``(m, 4, 2)`` corners (y, x) of each ellipse's bounding box, rotated with it.
    """
    keep = np.isfinite(covariance).all(axis=(1, 2)) & np.isfinite(yx).all(axis=1)
    values, vectors = np.linalg.eigh(covariance[keep])  # vectors[:, :, i] over (x, y)
    axes = vectors * (ELLIPSE_SIGMAS * np.sqrt(np.clip(values, 0, None)))[:, None, :]
    signs = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]], dtype=np.float64)
    corners_xy = np.einsum("cj,nij->nci", signs, axes)  # (m, 4, [x, y])
    return yx[keep][:, None, :] + corners_xy[..., ::-1]
