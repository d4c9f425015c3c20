"""A map from discovered keypoints to named bodyparts, fitted on a few labelled frames.

For every bodypart a ridge regression (:func:`bkind_model.evaluate.regression.ridge_fit`)
predicts its position in the animal's body frame from the discovered keypoints in that
frame (:mod:`bkind_model.naming.features`); predictions go back to the image with the
frame's rotation and centre. The penalty of each bodypart is chosen by leave-one-out over
the labelled frames, whose held-out residuals also give the uncertainty:

* ``covariance`` of a prediction = covariance of the leave-one-out residuals (px^2, in
  body coordinates, scaled to their median squared norm so that a few failed frames do
  not inflate every frame's) + the jackknife covariance of the prediction itself (it
  grows on frames unlike the labelled ones), rotated into the image;
* ``likelihood`` = probability that the bodypart lies within ``radius_px`` (by default
  :data:`LIKELIHOOD_RADIUS` body lengths) of the prediction, for a Gaussian error with
  that covariance made isotropic (its mean variance ``s2``): ``1 - exp(-r^2 / (2 s2))``.

By default (:data:`DEFAULT_FEATURES`) the body frame sits on the blob (its centroid and
major axis, the head-tail sign from the keypoints) and the blob's description joins the
features. With ``FeatureSet(fusion=True)`` the blob baseline (a ridge on the blob
tracker's features, image coordinates) is fitted the same way and both predictions are
combined by their inverse covariances, frame by frame.

Refitting after corrections is fitting again on the merged labels
(:func:`bkind_model.io.labels.merge_labels`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bkind_model.errors import BKindError
from bkind_model.evaluate.baselines import blob_features_of_video
from bkind_model.evaluate.regression import ridge_fit, ridge_predict
from bkind_model.io.atomic import atomic_path
from bkind_model.io.image_folder import list_images
from bkind_model.io.labels import (
    LABELLED_DATA,
    Labels,
    LabelsError,
    frame_numbers,
    image_path,
)
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from bkind_model.jsonfile import loads_json
from bkind_model.naming.bodyparts import Bodyparts
from bkind_model.naming.features import FeatureSet, body_features

#: Ridge penalties tried for each bodypart (standardised units, per frame); the large
#: ones approach the mean pose in the body frame, which few labels may favour.
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
#: Fewest labelled frames per bodypart: leave-one-out needs two to fit and one to test.
MIN_FRAMES = 3
#: Radius of the likelihood, in body lengths of the labels.
LIKELIHOOD_RADIUS = 0.1
#: Smallest residual variance, px^2 (labels are clicks: not better than a pixel).
MIN_VARIANCE = 1.0
#: Labelled points may lie this far outside the frame (a click on the edge), px.
EDGE_MARGIN = 2.0
MAP_FORMAT = "bkind-named-map-1"
#: The features maps use unless told otherwise: the body frame placed on the blob and
#: the blob's description added to the keypoints (the best from 5 labels on in
#: bench/few_labels.py).
DEFAULT_FEATURES = FeatureSet(blob=True, blob_frame=True)
#: What :func:`fit_best_map` chooses from: the default, and no body frame at all (an
#: animal that does not turn, e.g. head-fixed).
CANDIDATES = (DEFAULT_FEATURES, FeatureSet(image_frame=True))


class NamingError(BKindError):
    """Named bodyparts cannot be fitted or predicted from these files."""


@dataclass
class NamedMap:
    """A fitted map from discovered keypoints to named bodyparts.

    Attributes
    ----------
    bodyparts : Bodyparts
        The J named bodyparts and their skeleton.
    reference : ndarray
        ``(K, 2)`` the body frame's reference shape of the discovered keypoints, px.
    rigidity : ndarray
        ``(K,)`` the keypoints' weights in the body frame's alignment.
    features : FeatureSet
        What the map sees besides the keypoints in body coordinates.
    weights : ndarray
        ``(J, F + 1, 2)`` ridge weights of each bodypart (body coordinates, px).
    jackknife : list of ndarray
        Per bodypart ``(n_j, F + 1, 2)``: the weights fitted without each labelled frame.
    residual : ndarray
        ``(J, 2, 2)`` covariance of the leave-one-out residuals, body coordinates, px^2.
    alphas : ndarray
        ``(J,)`` the chosen ridge penalties.
    loo_error_px : ndarray
        ``(J,)`` mean leave-one-out error of each bodypart, px.
    radius_px : float
        Radius of the likelihood, px.
    blob_fits : list of RidgeFit or None
        With ``features.fusion``: per bodypart the ridge on the blob's features, image
        coordinates.
    source : dict
        The discovered keypoints it was fitted on: ``n_keypoints``, ``frame_size``,
        ``checkpoint_sha256``, ``results``, ``n_labelled`` (labelled frames used).
    """

    bodyparts: Bodyparts
    reference: np.ndarray
    rigidity: np.ndarray
    features: FeatureSet
    weights: np.ndarray
    jackknife: list[np.ndarray]
    residual: np.ndarray
    alphas: np.ndarray
    loo_error_px: np.ndarray
    radius_px: float
    blob_fits: list[RidgeFit] | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def predict_body(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bodyparts in body coordinates from ``(T, F)`` features.

        Returns
        -------
        mean : ndarray
            ``(T, J, 2)`` px (NaN where features are not finite).
        covariance : ndarray
            ``(T, J, 2, 2)`` px^2.
        """
        return _ridge_predictions(self.weights, self.jackknife, self.residual, x)

    def predict(self, result: KeypointResult, blob: np.ndarray | None = None) -> KeypointResult:
        """Named bodyparts on every frame of ``result``.

        Parameters
        ----------
        result : KeypointResult
            Discovered keypoints of the same model (any video of the same frame size).
        blob : ndarray, optional
            ``(T, 8)`` blob features of the video when the map uses them (computed from
            the video otherwise).

        Returns
        -------
        KeypointResult
            ``(T, J, 2)`` keypoints (px), confidence NaN (no heatmap), ``(T, J, 2, 2)``
            covariance (px^2) and ``(T, J)`` likelihood (see the module docstring);
            metadata ``kind`` "named", ``keypoint_names``, ``skeleton``, ``named_from``,
            ``likelihood_radius_px``, and the video's ``video_path``, ``fps``,
            ``frame_size``.

        Raises
        ------
        NamingError
            If ``result`` has another number of keypoints, comes from another model or
            has another frame size than the keypoints the map was fitted on.
        """
        self._check_source(result)
        frame, x = body_features(
            result.keypoints,
            result.confidence,
            result.covariance,
            reference=self.reference,
            rigidity=self.rigidity,
            blob=_blob(result, blob) if self.features.needs_blob else None,
            features=self.features,
        )
        mean, covariance = self.predict_body(x)
        rotation = frame.rotation[:, None]  # (T, 1, 2, 2)
        keypoints = frame.to_image(mean.reshape(len(x), -1, 2)).reshape(mean.shape)
        covariance = rotation @ covariance @ np.swapaxes(rotation, -1, -2)
        if self.blob_fits is not None:
            keypoints, covariance = _fuse(
                keypoints,
                covariance,
                *_ridge_predictions(
                    np.stack([f.weights for f in self.blob_fits]),
                    [f.jackknife for f in self.blob_fits],
                    np.stack([f.residual for f in self.blob_fits]),
                    _blob(result, blob),
                ),
            )
        return KeypointResult(
            keypoints=keypoints.astype(np.float32),
            confidence=np.full(mean.shape[:2], np.nan, np.float32),
            covariance=covariance.astype(np.float32),
            metadata=self._metadata(result),
            likelihood=likelihood(covariance, self.radius_px).astype(np.float32),
        )

    def _metadata(self, result: KeypointResult) -> dict[str, Any]:
        video = (
            "video_path",
            "fps",
            "frame_size",
            "video_fingerprint",
        )  # what ties it to its video
        copied = {k: result.metadata[k] for k in video if k in result.metadata}
        return copied | {
            "kind": "named",
            "keypoint_names": list(self.bodyparts.names),
            "skeleton": [list(edge) for edge in self.bodyparts.skeleton],
            "named_from": str(result.path) if result.path is not None else None,
            "likelihood_radius_px": float(self.radius_px),
            "n_labelled": int(self.source.get("n_labelled", 0)),
        }

    def _check_source(self, result: KeypointResult) -> None:
        where = result.path or "these keypoints"
        fitted = self.source.get("results", "the labelled frames")
        if result.n_keypoints != self.reference.shape[0]:
            raise NamingError(
                f"{where}: {result.n_keypoints} discovered keypoints but the map was fitted on "
                f"{self.reference.shape[0]} ({fitted}); fit it again on keypoints of this model."
            )
        sha, mine = result.metadata.get("checkpoint_sha256"), self.source.get("checkpoint_sha256")
        if sha and mine and sha != mine:
            raise NamingError(
                f"{where}: keypoints of another checkpoint than the map's ({fitted}); extract "
                "with the same checkpoint, or fit the map again on these keypoints."
            )
        size, mine = result.metadata.get("frame_size"), self.source.get("frame_size")
        if size is not None and mine is not None and list(size) != list(mine):
            raise NamingError(
                f"{where}: frames of {size[1]}x{size[0]} px but the map was fitted on "
                f"{mine[1]}x{mine[0]} px ({fitted}); fit it on labels of this video."
            )

    def save(self, path: str | Path) -> Path:
        """Write the map (``.npz``: arrays and a JSON header), atomically."""
        path = Path(path)
        header = {
            "format": MAP_FORMAT,
            "bodyparts": self.bodyparts.to_dict(),
            "features": asdict(self.features),
            "radius_px": self.radius_px,
            "source": self.source,
        }
        arrays = {
            "header": np.array(json.dumps(header)),
            "reference": self.reference,
            "rigidity": self.rigidity,
            "weights": self.weights,
            "residual": self.residual,
            "alphas": self.alphas,
            "loo_error_px": self.loo_error_px,
        }
        arrays |= {f"jackknife{j}": w for j, w in enumerate(self.jackknife)}
        for j, fit in enumerate(self.blob_fits or []):
            arrays |= {f"blob_weights{j}": fit.weights, f"blob_jackknife{j}": fit.jackknife}
            arrays |= {f"blob_residual{j}": fit.residual}
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy's stub
        return path

    @classmethod
    def load(cls, path: str | Path) -> NamedMap:
        """Read a map written by :meth:`save`.

        Raises
        ------
        NamingError
            If the file is missing or not a map.
        """
        path = Path(path)
        if not path.is_file():
            raise NamingError(f"{path}: map file not found; fit one with `bkind name`.")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = loads_json(str(data["header"]), source=f"{path} header")
                if header.get("format") != MAP_FORMAT:
                    raise ValueError(f"format {header.get('format')!r}")
                weights = data["weights"]
                features = FeatureSet(**header["features"])
                blob_fits = [
                    RidgeFit(
                        data[f"blob_weights{j}"],
                        data[f"blob_jackknife{j}"],
                        data[f"blob_residual{j}"],
                        float("nan"),
                        float("nan"),
                    )
                    for j in range(len(weights) if features.fusion else 0)
                ]
                return cls(
                    bodyparts=Bodyparts.from_dict(header["bodyparts"], source=path),
                    reference=data["reference"],
                    rigidity=data["rigidity"],
                    features=features,
                    weights=weights,
                    jackknife=[data[f"jackknife{j}"] for j in range(len(weights))],
                    residual=data["residual"],
                    alphas=data["alphas"],
                    loo_error_px=data["loo_error_px"],
                    radius_px=float(header["radius_px"]),
                    blob_fits=blob_fits or None,
                    source=header["source"],
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NamingError(
                f"{path}: not a map of named bodyparts ({str(exc).splitlines()[0][:120]}); fit "
                "it again with `bkind name`."
            ) from exc


def _ridge_predictions(
    weights: np.ndarray, jackknife: list[np.ndarray], residual: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means ``(T, J, 2)`` and covariances ``(T, J, 2, 2)`` of J ridge fits on ``(T, F)``.

    Covariance = the leave-one-out residuals' + the jackknife spread of the prediction
    (its size taken robustly, from the median squared deviation).
    """
    mean = np.stack([ridge_predict(w, x) for w in weights], axis=1)
    covariance = np.empty((*mean.shape, 2))
    for j, refits in enumerate(jackknife):
        spread = np.stack([ridge_predict(w, x) for w in refits])  # (n, T, 2)
        spread -= np.median(spread, axis=0)
        n = len(refits)
        shape = np.einsum("nti,ntj->tij", spread, spread)  # (T, 2, 2)
        # The jackknife's (n - 1) * mean |d|^2, with the mean of the squared norms taken
        # robustly (median / ln 2 for a 2D Gaussian): one influential labelled frame
        # would otherwise widen every frame's spread.
        robust = (n - 1) * np.median((spread**2).sum(axis=-1), axis=0) / np.log(2)
        trace = np.trace(shape, axis1=-2, axis2=-1)
        scale = np.divide(robust, trace, out=np.zeros_like(trace), where=trace > 0)
        covariance[:, j] = residual[j] + scale[:, None, None] * shape
    return mean, covariance


def _fuse(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian estimates ``(..., 2)``, ``(..., 2, 2)`` combined by inverse covariance.

    Where one is not finite, the other is kept.
    """
    finite_a = np.isfinite(mean_a).all(-1) & np.isfinite(cov_a).all((-2, -1))
    finite_b = np.isfinite(mean_b).all(-1) & np.isfinite(cov_b).all((-2, -1))
    eye = np.eye(2)
    p_a = np.linalg.inv(np.where(finite_a[..., None, None], cov_a, eye))
    p_b = np.linalg.inv(np.where(finite_b[..., None, None], cov_b, eye))
    p_a[~finite_a], p_b[~finite_b] = 0.0, 0.0
    both = p_a + p_b
    covariance = np.linalg.inv(np.where((finite_a | finite_b)[..., None, None], both, eye))
    weighted = np.einsum("...ij,...j->...i", p_a, np.nan_to_num(mean_a))
    weighted += np.einsum("...ij,...j->...i", p_b, np.nan_to_num(mean_b))
    mean = np.einsum("...ij,...j->...i", covariance, weighted)
    none = ~(finite_a | finite_b)
    mean[none], covariance[none] = np.nan, np.nan
    return mean, covariance


def likelihood(covariance: np.ndarray, radius_px: float) -> np.ndarray:
    """``(..., 2, 2)`` covariance px^2 -> ``(...)`` probability of an error below the radius.

    The covariance is made isotropic with its mean variance ``s2`` (half the trace):
    ``1 - exp(-radius^2 / (2 s2))``; NaN where the covariance is not finite.
    """
    variance = np.trace(covariance, axis1=-2, axis2=-1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.exp(-(radius_px**2) / (2 * variance))


def _blob(result: KeypointResult, blob: np.ndarray | None) -> np.ndarray:
    """The given blob features, or those of the results' video (computed once per video)."""
    if blob is not None:
        return blob
    video = result.require_video()
    return _video_blob(str(video), video.stat().st_mtime_ns if video.exists() else 0)


@functools.lru_cache(maxsize=4)
def _video_blob(video: str, _mtime_ns: int) -> np.ndarray:
    """``(T, 8)`` blob features of a video (cached: a refit needs them again)."""
    with open_video(video) as source:
        return blob_features_of_video(source)


def labelled_frames(result: KeypointResult, labels: Labels, source: str | Path) -> np.ndarray:
    """The frame of ``result`` each labels row was made on.

    Results of an image folder (keypoints extracted on the labelled images themselves):
    the image whose file name is the row's image name (or ends with ``_<name>``). Results
    of a video: the frame number in the image name (``img0042.png`` is frame 42), and the
    rows' video folder (``labeled-data/<video stem>/``) must be the video's.

    Returns
    -------
    ndarray
        ``(N,)`` int frame indices into ``result``.

    Raises
    ------
    LabelsError
        If the labels were made on another video, name images that are not in the
        folder, or frame numbers beyond the video.
    """
    video = result.video_path
    names = [Path(str(f).replace("\\", "/")).name for f in labels.frames]
    if video is not None and video.is_dir():
        files = [p.name for p in list_images(video)]
        found: dict[str, int] = {}
        for i, file in enumerate(files):
            found.setdefault(file, i)
            found.setdefault(file.partition("_")[2], i)
        lacking = [n for n in names if n not in found]
        if lacking:
            raise LabelsError(
                f"{source}: {len(lacking)} labelled images (e.g. {lacking[0]}) are not in "
                f"{video}, whose keypoints these are; extract keypoints on the folder of the "
                "labelled images, or pass the labels of this folder."
            )
        return np.array([found[n] for n in names], np.int64)
    folders = {Path(str(f).replace("\\", "/")).parent.name for f in labels.frames}
    folders.discard("")
    if video is not None and folders and video.stem not in folders:
        raise LabelsError(
            f"{source}: labels of video(s) {', '.join(sorted(folders))} but the keypoints "
            f"({result.path}) are of {video.name}; pass the results of that video, or its "
            "labels (labeled-data/<video stem>/CollectedData_*.h5)."
        )
    frames = frame_numbers(labels.frames, source)
    beyond = frames[(frames < 0) | (frames >= result.n_frames)]
    if len(beyond):
        raise LabelsError(
            f"{source}: labelled frame {int(beyond[0])} is beyond the {result.n_frames} frames "
            f"of {result.path}: these labels belong to another (longer) video; pass its results."
        )
    return frames


def frame_rows(result: KeypointResult, frames: np.ndarray) -> list[str]:
    """Labels rows of frames of ``result``: the inverse of :func:`labelled_frames`.

    ``labeled-data/<video stem>/imgNNNN.png`` for a video file (DeepLabCut's names), and
    ``labeled-data/<folder>/<image file>`` for an image folder.
    """
    video = result.require_video()
    if video.is_dir():
        files = list_images(video)
        return [f"{LABELLED_DATA}/{video.name}/{files[int(f)].name}" for f in frames]
    return [image_path(video, int(f), result.n_frames) for f in frames]


def _check_inside(labels: Labels, frame_size: Any, source: str | Path) -> None:
    """Refuse labelled points outside the frame (``EDGE_MARGIN`` px tolerated)."""
    if frame_size is None:
        return
    height, width = (float(v) for v in frame_size)
    x, y = labels.joints[..., 0], labels.joints[..., 1]
    with np.errstate(invalid="ignore"):
        outside = (x < -EDGE_MARGIN - 0.5) | (x > width - 0.5 + EDGE_MARGIN)
        outside |= (y < -EDGE_MARGIN - 0.5) | (y > height - 0.5 + EDGE_MARGIN)
    if outside.any():
        row, joint = np.argwhere(outside)[0]
        raise LabelsError(
            f"{source}: {int(outside.sum())} labelled points lie outside the {width:.0f}x"
            f"{height:.0f} px frames (first: '{labels.names[joint]}' in "
            f"{labels.frames[row]} at x={x[row, joint]:.0f}, y={y[row, joint]:.0f}); move or "
            "delete them, or pass the labels of this video."
        )


def fit_map(
    result: KeypointResult,
    labels: Labels,
    frames: np.ndarray,
    bodyparts: Bodyparts | None = None,
    *,
    features: FeatureSet = DEFAULT_FEATURES,
    blob: np.ndarray | None = None,
    radius_px: float | None = None,
    source: str | Path = "the labels",
) -> NamedMap:
    """Fit the map of every bodypart on the labelled frames.

    Parameters
    ----------
    result : KeypointResult
        Discovered keypoints; the labelled frames are some of its frames.
    labels : Labels
        ``(N, J', 2)`` labelled bodyparts, px, NaN where not labelled.
    frames : ndarray
        ``(N,)`` the frame of ``result`` of each labels row (:func:`labelled_frames`).
    bodyparts : Bodyparts, optional
        The bodyparts to name (all labelled ones by default); each must be in the labels.
    features : FeatureSet
        Features besides the keypoints in body coordinates.
    blob : ndarray, optional
        ``(T, 8)`` blob features of ``result``'s frames (with ``features.blob``; computed
        from its video otherwise).
    radius_px : float, optional
        Radius of the likelihood, px; default :data:`LIKELIHOOD_RADIUS` body lengths of
        the labels.
    source : str or Path
        The labels file, named in error messages.

    Returns
    -------
    NamedMap
        With fewer labelled frames than features, the ridge penalty (chosen by
        leave-one-out) keeps every fit determined.

    Raises
    ------
    LabelsError
        For labelled points outside the frames.
    NamingError
        If a bodypart is not in the labels, is labelled in fewer than
        :data:`MIN_FRAMES` frames (with usable keypoints), or the arrays disagree.
    """
    bodyparts = bodyparts or Bodyparts(tuple(labels.names))
    frames = np.asarray(frames, np.int64)
    if len(frames) != len(labels.joints):
        raise NamingError(f"{source}: {len(frames)} frame numbers for {len(labels.joints)} rows.")
    _check_inside(labels, result.metadata.get("frame_size"), source)
    absent = [n for n in bodyparts.names if n not in labels.names]
    if absent:
        raise NamingError(
            f"{source}: bodyparts never labelled: {', '.join(absent)}; label each in at least "
            f"{MIN_FRAMES} frames, or remove it from the bodyparts."
        )
    blob = _blob(result, blob) if features.needs_blob else None
    frame, x = body_features(
        result.keypoints, result.confidence, result.covariance, blob=blob, features=features
    )
    x = x[frames]
    rows_frame = replace(frame, centre=frame.centre[frames], rotation=frame.rotation[frames])
    columns = [labels.names.index(n) for n in bodyparts.names]
    targets = rows_frame.to_body(labels.joints[:, columns])  # (N, J, 2) body coordinates
    usable = np.isfinite(x).all(axis=1)
    fits: list[RidgeFit] = []
    blob_fits: list[RidgeFit] = []
    for j, name in enumerate(bodyparts.names):
        rows = np.flatnonzero(usable & np.isfinite(targets[:, j]).all(axis=1))
        if len(rows) < MIN_FRAMES:
            raise NamingError(
                f"{source}: '{name}' is labelled in {len(rows)} frame(s) with usable keypoints; "
                f"the map needs at least {MIN_FRAMES}: label it in {MIN_FRAMES - len(rows)} "
                "more frame(s)."
            )
        fits.append(fit_ridge(x[rows], targets[rows, j]))
        if blob is not None and features.fusion:
            column = labels.names.index(name)
            blob_fits.append(fit_ridge(blob[frames[rows]], labels.joints[rows, column]))
    length = float(labels.body_length)
    return NamedMap(
        bodyparts=bodyparts,
        reference=frame.reference,
        rigidity=frame.rigidity,
        features=features,
        weights=np.stack([f.weights for f in fits]),
        jackknife=[f.jackknife for f in fits],
        residual=np.stack([f.residual for f in fits]),
        alphas=np.array([f.alpha for f in fits]),
        loo_error_px=np.array([f.loo_error for f in fits]),
        radius_px=float(radius_px) if radius_px is not None else LIKELIHOOD_RADIUS * length,
        blob_fits=blob_fits or None,
        source={
            "n_keypoints": int(result.n_keypoints),
            "frame_size": _plain(result.metadata.get("frame_size")),
            "checkpoint_sha256": result.metadata.get("checkpoint_sha256"),
            "results": str(result.path) if result.path is not None else None,
            "n_labelled": int(usable.sum()),
        },
    )


@dataclass
class RidgeFit:
    """One bodypart's ridge fit (see :func:`fit_ridge`).

    Attributes
    ----------
    weights : ndarray
        ``(F + 1, 2)`` for :func:`~bkind_model.evaluate.regression.ridge_predict`.
    jackknife : ndarray
        ``(n, F + 1, 2)`` the weights fitted without each of the n frames.
    residual : ndarray
        ``(2, 2)`` covariance of the leave-one-out residuals, px^2, scaled to their median
        squared norm (robust to a few failed frames) + :data:`MIN_VARIANCE`.
    alpha : float
        The chosen penalty.
    loo_error : float
        Mean leave-one-out error, px.
    """

    weights: np.ndarray
    jackknife: np.ndarray
    residual: np.ndarray
    alpha: float
    loo_error: float


def fit_ridge(x: np.ndarray, y: np.ndarray) -> RidgeFit:
    """Ridge of ``(n, 2)`` targets on ``(n, F)`` features, the penalty chosen by leave-one-out.

    The penalty of :data:`ALPHAS` with the smallest mean leave-one-out error (``n >= 2``
    frames); the benchmark fits its baselines the same way.
    """
    n = len(x)
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    for alpha in ALPHAS:
        weights = np.stack(
            [ridge_fit(np.delete(x, i, 0), np.delete(y, i, 0), alpha) for i in range(n)]
        )
        residuals = (
            np.stack([ridge_predict(w, x[i : i + 1])[0] for i, w in enumerate(weights)]) - y
        )
        error = float(np.linalg.norm(residuals, axis=1).mean())
        if best is None or error < best[0]:
            best = (error, alpha, weights, residuals)
    assert best is not None
    error, alpha, jackknife, residuals = best
    # The shape of the residuals' covariance, scaled robustly: a few labelled frames whose
    # keypoints failed must not inflate every frame's uncertainty. For a 2D Gaussian,
    # |e|^2 / s2 has a chi-square(2) distribution, whose median is 2 ln 2.
    shape = residuals.T @ residuals
    variance = float(np.median((residuals**2).sum(axis=1))) / (2 * np.log(2))
    trace = float(np.trace(shape))
    residual = (2 * variance / trace * shape if trace > 0 else 0.0) + MIN_VARIANCE * np.eye(2)
    return RidgeFit(ridge_fit(x, y, alpha), jackknife, residual, alpha, error)


def _plain(value: Any) -> Any:
    """Numpy arrays and scalars of metadata as JSON-ready lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def fit_best_map(
    result: KeypointResult,
    labels: Labels,
    frames: np.ndarray,
    bodyparts: Bodyparts | None = None,
    *,
    candidates: tuple[FeatureSet, ...] = CANDIDATES,
    blob: np.ndarray | None = None,
    source: str | Path = "the labels",
) -> NamedMap:
    """:func:`fit_map` with each of ``candidates``; the one of least leave-one-out error.

    The mean over the bodyparts of their leave-one-out errors decides, so the choice
    uses the labelled frames only.
    """
    if any(c.needs_blob for c in candidates):
        blob = _blob(result, blob)
    maps = [
        fit_map(result, labels, frames, bodyparts, features=c, blob=blob, source=source)
        for c in candidates
    ]
    return min(maps, key=lambda m: float(np.mean(m.loo_error_px)))
