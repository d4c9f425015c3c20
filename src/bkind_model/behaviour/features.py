"""Per-frame egocentric features of keypoints, summarised over a window of frames.

A behaviour is a pose and how it changes: the same groom looks the same wherever the
animal is and whichever way it faces. So the keypoints are first taken into the animal's
body frame (:func:`bkind_model.pose.body_frame.body_frame`, generalised Procrustes), and
every length is divided by the size of the reference shape (its RMS radius, px), so the
features are in *body sizes* and do not change with the camera's distance.

Per frame (:func:`frame_features`, ``F = 4K + 5 + K(K-1)/2`` columns for ``K``
keypoints):

==========================  ========  ===============================================
columns                     count     meaning (units)
==========================  ========  ===============================================
body coordinates            2K        (x, y) of each keypoint in the body frame (sizes)
body velocities             2K        their change, body sizes per second
centre velocity             3         forward, lateral velocity and speed of the
                                      centre, body sizes per second
heading rate                2         angular velocity of the heading and its
                                      magnitude, radians per second
distances                   K(K-1)/2  between every pair of keypoints (sizes)
==========================  ========  ===============================================

Discovered keypoints come with their heatmap's shape, which carries what positions miss
(a rearing animal's raised head looks larger and less sharp, a grooming one's paws blur
the head): :func:`result_features` adds, with ``heatmap_shape``, ``2K`` columns: the log
of each keypoint's confidence and the log of its covariance's trace in body sizes squared.
(Named keypoints have none: constant columns.)

Over a window (:func:`window_features`): each column as is, and its mean and standard
deviation over a centred window of ``window`` frames and over one a quarter as long
(``5F`` columns), so a classifier sees a frame's context: a groom's strokes are a
large standard deviation of the head's velocity, a rest a small one of everything.

Missing keypoints (NaN, e.g. hand-deleted; also infinite or absurdly far ones,
:func:`~bkind_model.naming.features.observed_keypoints`) are interpolated linearly in
time; a keypoint never seen in the video sits at the body's centre with zero velocity.
A frame with fewer than two keypoints found (:func:`known_frames`) has no features
worth a behaviour: classifiers and motifs leave it *unknown* (no behaviour, probability
NaN) and never train on it. So a damaged frame changes the features of the frames in
its window and no others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bkind_model.behaviour import BehaviourError
from bkind_model.io.results import KeypointResult
from bkind_model.naming.features import observed_keypoints
from bkind_model.pose.body_frame import body_frame

#: Standard deviation of the Gaussian that smooths keypoints before differentiating, in
#: frames: discovered keypoints jitter by a pixel or two from frame to frame.
SMOOTH_FRAMES = 1.0
#: The short window is this fraction of the long one (at least 3 frames).
SHORT_FRACTION = 0.25
#: Largest heatmap confidence and spread (body sizes squared) taken before their log.
MAX_HEATMAP = 1e6
#: Fewest keypoints found in a frame for it to have features (two give a heading).
MIN_KEYPOINTS = 2


def fill_missing(keypoints: np.ndarray) -> np.ndarray:
    """Interpolate NaN keypoints linearly in time.

    Missing means not :func:`~bkind_model.naming.features.observed_keypoints` (NaN,
    infinite or absurdly far). Before the first and after the last frame that has a
    keypoint, it is held constant.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` keypoints, px; NaN where missing.

    Returns
    -------
    ndarray
        ``(T, K, 2)`` float64, NaN only for keypoints missing in every frame.
    """
    seen = observed_keypoints(keypoints)  # (T, K)
    filled = np.where(seen[..., None], np.asarray(keypoints, np.float64), np.nan)
    frames = np.arange(len(filled))
    for k in range(filled.shape[1]):
        known = seen[:, k]
        if known.all() or not known.any():
            continue
        for axis in range(2):
            filled[:, k, axis] = np.interp(frames, frames[known], filled[known, k, axis])
    return filled


def known_frames(result: KeypointResult) -> np.ndarray:
    """Which frames of a results file have features: ``(T,)`` bool.

    A frame needs at least :data:`MIN_KEYPOINTS` (or all, with fewer keypoints)
    keypoints found (:func:`~bkind_model.naming.features.observed_keypoints`); the
    others are *unknown*: no behaviour, no motif, not trained on.

    Raises
    ------
    BehaviourError
        When no frame has them (no frames, or every keypoint missing), naming the file.
    """
    found = observed_keypoints(result.keypoints).sum(axis=1)
    known = found >= min(MIN_KEYPOINTS, result.keypoints.shape[1])
    if not known.any():
        where = result.path or "these keypoints"
        problem = (
            "holds no frames"
            if result.n_frames == 0
            else f"none of its {result.n_frames} frames has {MIN_KEYPOINTS} keypoints found "
            "(all missing or not finite)"
        )
        raise BehaviourError(f"{where}: {problem}; extract the keypoints of this video again.")
    return known


def window_frames(window_s: float, fps: float, n_frames: int, where: str) -> int:
    """A window in seconds as a number of frames, checked against the video.

    Parameters
    ----------
    window_s : float
        The window, seconds (> 0).
    fps : float
        The video's frames per second.
    n_frames : int
        The video's number of frames T.
    where : str
        What messages name (the results file).

    Returns
    -------
    int
        ``round(window_s * fps)``, at least 1.

    Raises
    ------
    BehaviourError
        For a frame rate that is not a positive number, or a window longer than the
        video (which would only average the whole video, and can exhaust memory).
    """
    if not (np.isfinite(fps) and fps > 0):
        raise BehaviourError(
            f"{where}: frame rate {fps} fps is no frame rate; extract the keypoints again."
        )
    frames = window_s * fps
    if not frames <= n_frames:
        raise BehaviourError(
            f"{where}: a window of {window_s:g} s is {frames:.4g} frames at {fps:g} fps, "
            f"longer than the video's {n_frames} frames; use a window of at most "
            f"{n_frames / fps:.4g} s."
        )
    return max(1, round(frames))


@dataclass(frozen=True)
class BodyShape:
    """What gives several videos the same body axes: the body frame's reference shape.

    Attributes
    ----------
    reference : ndarray
        ``(K, 2)`` reference shape of the keypoints, px, centred.
    rigidity : ndarray
        ``(K,)`` weight of each keypoint in the alignment, 0 to 1 (low for keypoints
        that wander off the body; :func:`~bkind_model.pose.body_frame.body_frame`).
    """

    reference: np.ndarray
    rigidity: np.ndarray

    @property
    def size(self) -> float:
        """RMS distance of the reference's keypoints from its centre, px: the body size."""
        return max(float(np.sqrt(np.mean(np.sum(self.reference**2, axis=-1)))), 1e-6)


def frame_features(
    keypoints: np.ndarray,
    fps: float,
    confidence: np.ndarray | None = None,
    shape: BodyShape | None = None,
) -> tuple[np.ndarray, BodyShape]:
    """Egocentric features of every frame (the table in the module docstring).

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` keypoints (x, y), px; NaN where missing.
    fps : float
        Frames per second, for velocities per second.
    confidence : ndarray, optional
        ``(T, K)`` weights of the keypoints in the body-frame fit.
    shape : BodyShape, optional
        The body frame's reference shape (the one returned for the training videos, so
        other videos get the same body axes); estimated from these keypoints when None.

    Returns
    -------
    features : ndarray
        ``(T, F)`` float32.
    shape : BodyShape
        The reference shape used.
    """
    filled = fill_missing(keypoints)
    never_seen = ~np.isfinite(filled).all(axis=(0, 2))  # (K,)
    weights = None if confidence is None else np.where(never_seen, 0.0, confidence)
    if shape is None:
        frame = body_frame(filled, weights)
        shape = BodyShape(frame.reference, frame.rigidity)
    else:
        frame = body_frame(filled, weights, shape.reference, shape.rigidity)
    size = shape.size
    body = frame.to_body(np.nan_to_num(filled)) / size  # (T, K, 2) body sizes
    body[:, never_seen] = 0.0
    body = ndimage.gaussian_filter1d(body, SMOOTH_FRAMES, axis=0, mode="nearest")
    centre = ndimage.gaussian_filter1d(frame.centre / size, SMOOTH_FRAMES, axis=0, mode="nearest")
    heading = ndimage.gaussian_filter1d(
        np.unwrap(frame.heading), SMOOTH_FRAMES, axis=0, mode="nearest"
    )
    n_frames = len(body)
    per_second = fps if n_frames > 1 else 0.0
    body_velocity = _rate(body, per_second)
    # The centre's velocity turned into the body frame: forward (+x) and lateral (+y).
    centre_velocity = np.einsum("tji,tj->ti", frame.rotation, _rate(centre, per_second))
    speed = np.linalg.norm(centre_velocity, axis=-1, keepdims=True)
    turning = _rate(heading, per_second)[:, None]
    first, second = np.triu_indices(body.shape[1], k=1)
    distances = np.linalg.norm(body[:, first] - body[:, second], axis=-1)
    columns = (
        body.reshape(n_frames, -1),
        body_velocity.reshape(n_frames, -1),
        centre_velocity,
        speed,
        turning,
        np.abs(turning),
        distances,
    )
    features = np.concatenate(columns, axis=1)
    return np.nan_to_num(features).astype(np.float32), shape


def _rate(values: np.ndarray, per_second: float) -> np.ndarray:
    """Time derivative of ``(T, ...)`` values along frames, per second (0 for one frame)."""
    if len(values) < 2:
        return np.zeros_like(values)
    return np.gradient(values, axis=0) * per_second


def window_lengths(window: int) -> tuple[int, int]:
    """The long and the short window of :func:`window_features`, frames (odd, >= 3)."""
    long = max(3, int(window) | 1)
    short = max(3, round(SHORT_FRACTION * long) | 1)
    return long, short


def window_features(features: np.ndarray, window: int) -> np.ndarray:
    """Each frame's features with their mean and standard deviation over two windows.

    Parameters
    ----------
    features : ndarray
        ``(T, F)`` per-frame features (:func:`frame_features`).
    window : int
        Length of the long window, frames (made odd); the short one is a quarter of it.

    Returns
    -------
    ndarray
        ``(T, 5F)`` float32: the features, then mean and standard deviation over the long
        window, then over the short one. Windows are centred; at the ends of the video
        the edge frames are repeated.
    """
    values = np.asarray(features, np.float64)
    parts = [values]
    for length in window_lengths(window):
        mean = ndimage.uniform_filter1d(values, length, axis=0, mode="nearest")
        square = ndimage.uniform_filter1d(values**2, length, axis=0, mode="nearest")
        parts += [mean, np.sqrt(np.clip(square - mean**2, 0.0, None))]
    return np.concatenate(parts, axis=1).astype(np.float32)


def keypoint_weights(result: KeypointResult) -> np.ndarray:
    """``(T, K)`` weights of a result's keypoints: its stated likelihood, else confidence.

    A weight that is not finite counts as 1 (as for hand-edited keypoints).
    """
    weights = result.likelihood if result.likelihood is not None else result.confidence
    weights = np.asarray(weights, np.float64)
    return np.where(np.isfinite(weights), weights, 1.0)


def shape_of(results: Sequence[KeypointResult]) -> BodyShape:
    """One body-frame reference shape for the keypoints of several videos."""
    keypoints = np.concatenate([fill_missing(r.keypoints) for r in results])
    weights = np.concatenate([keypoint_weights(r) for r in results])
    weights[~np.isfinite(keypoints).all(axis=-1)] = 0.0
    frame = body_frame(keypoints, weights)
    return BodyShape(frame.reference, frame.rigidity)


def heatmap_features(result: KeypointResult, size: float) -> np.ndarray:
    """``(T, 2K)`` float64: log confidence, and log covariance trace in body sizes squared.

    Parameters
    ----------
    result : KeypointResult
        Its ``confidence`` ``(T, K)`` (1: a uniform heatmap) and ``covariance``
        ``(T, K, 2, 2)``, px^2; a value that is not finite (NaN for hand-edited
        keypoints) counts as confidence 1, no spread. Both are clipped to
        at most :data:`MAX_HEATMAP` before the log, so no value dwarfs the others.
    size : float
        The body size, px (:attr:`BodyShape.size`).
    """
    confidence = np.asarray(result.confidence, np.float64)
    confidence = np.where(np.isfinite(confidence), confidence, 1.0)
    covariance = np.asarray(result.covariance, np.float64)
    spread = np.trace(np.where(np.isfinite(covariance), covariance, 0.0), axis1=-2, axis2=-1)
    with np.errstate(over="ignore"):
        spread = spread / size**2
    return np.concatenate(
        [np.log(confidence.clip(1e-3, MAX_HEATMAP)), np.log(spread.clip(1e-6, MAX_HEATMAP))],
        axis=1,
    )


def result_features(
    result: KeypointResult,
    window_s: float,
    shape: BodyShape | None = None,
    heatmap_shape: bool = True,
) -> tuple[np.ndarray, BodyShape]:
    """Windowed egocentric features of a results file's keypoints.

    Parameters
    ----------
    result : KeypointResult
        Discovered or named keypoints ``(T, K, 2)``, px, and their confidence.
    window_s : float
        Length of the long window, seconds (converted with the video's fps).
    shape : BodyShape, optional
        The body frame's reference shape (:func:`shape_of`); estimated from this video
        when None.
    heatmap_shape : bool
        Add the heatmaps' confidence and spread (:func:`heatmap_features`).

    Returns
    -------
    features : ndarray
        ``(T, 5F)`` float32 (:func:`window_features`; ``F`` counts the ``2K`` heatmap
        columns too with ``heatmap_shape``).
    shape : BodyShape
        The reference shape used.

    Raises
    ------
    BehaviourError
        For a frame rate that is no number or a window longer than the video
        (:func:`window_frames`).
    """
    where = str(result.path or "these keypoints")
    window = window_frames(window_s, result.fps, result.n_frames, where)
    per_frame, shape = frame_features(
        result.keypoints, result.fps, keypoint_weights(result), shape
    )
    if heatmap_shape:
        per_frame = np.concatenate([per_frame, heatmap_features(result, shape.size)], axis=1)
    return window_features(per_frame, window), shape
