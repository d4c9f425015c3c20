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

Over a window (:func:`window_features`): each column as is, and its mean and standard
deviation over a centred window of ``window`` frames and over one a quarter as long
(``5F`` columns), so a classifier sees a frame's context: a groom's strokes are a
large standard deviation of the head's velocity, a rest a small one of everything.

Missing keypoints (NaN, e.g. hand-deleted) are interpolated linearly in time; a keypoint
never seen in the video sits at the body's centre with zero velocity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from bkind_model.io.results import KeypointResult
from bkind_model.pose.body_frame import body_frame

#: Standard deviation of the Gaussian that smooths keypoints before differentiating, in
#: frames: discovered keypoints jitter by a pixel or two from frame to frame.
SMOOTH_FRAMES = 1.0
#: The short window is this fraction of the long one (at least 3 frames).
SHORT_FRACTION = 0.25


def fill_missing(keypoints: np.ndarray) -> np.ndarray:
    """Interpolate NaN keypoints linearly in time.

    Before the first and after the last frame that has a keypoint, it is held constant.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` keypoints, px; NaN where missing.

    Returns
    -------
    ndarray
        ``(T, K, 2)`` float64, NaN only for keypoints missing in every frame.
    """
    filled = np.array(keypoints, dtype=np.float64)
    frames = np.arange(len(filled))
    seen = np.asarray(np.isfinite(filled).all(axis=-1))  # (T, K)
    for k in range(filled.shape[1]):
        known = seen[:, k]
        if known.all() or not known.any():
            continue
        for axis in range(2):
            filled[:, k, axis] = np.interp(frames, frames[known], filled[known, k, axis])
    return filled


def reference_size(reference: np.ndarray) -> float:
    """RMS distance of a ``(K, 2)`` reference shape's keypoints from its centre, px."""
    return max(float(np.sqrt(np.mean(np.sum(reference**2, axis=-1)))), 1e-6)


def frame_features(
    keypoints: np.ndarray,
    fps: float,
    confidence: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Egocentric features of every frame (the table in the module docstring).

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` keypoints (x, y), px; NaN where missing.
    fps : float
        Frames per second, for velocities per second.
    confidence : ndarray, optional
        ``(T, K)`` weights of the keypoints in the body-frame fit.
    reference : ndarray, optional
        ``(K, 2)`` reference shape of the body frame, px (the one returned for the
        training videos, so other videos get the same body axes); estimated when None.

    Returns
    -------
    features : ndarray
        ``(T, F)`` float32.
    reference : ndarray
        ``(K, 2)`` the reference shape used, px.
    """
    filled = fill_missing(keypoints)
    never_seen = ~np.isfinite(filled).all(axis=(0, 2))  # (K,)
    weights = None if confidence is None else np.where(never_seen, 0.0, confidence)
    frame = body_frame(filled, weights, reference)
    size = reference_size(frame.reference)
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
    return np.nan_to_num(features).astype(np.float32), frame.reference


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
    """``(T, K)`` weights of a result's keypoints: its stated likelihood, else confidence."""
    weights = result.likelihood if result.likelihood is not None else result.confidence
    return np.nan_to_num(np.asarray(weights, np.float64), nan=1.0)


def reference_of(results: Sequence[KeypointResult]) -> np.ndarray:
    """One body-frame reference shape ``(K, 2)``, px, for the keypoints of several videos."""
    keypoints = np.concatenate([fill_missing(r.keypoints) for r in results])
    weights = np.concatenate([keypoint_weights(r) for r in results])
    weights[~np.isfinite(keypoints).all(axis=-1)] = 0.0
    return body_frame(keypoints, weights).reference


def result_features(
    result: KeypointResult, window_s: float, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed egocentric features of a results file's keypoints.

    Parameters
    ----------
    result : KeypointResult
        Discovered or named keypoints ``(T, K, 2)``, px, and their confidence.
    window_s : float
        Length of the long window, seconds (converted with the video's fps).
    reference : ndarray, optional
        ``(K, 2)`` body-frame reference shape, px (:func:`reference_of`); estimated from
        this video when None.

    Returns
    -------
    features : ndarray
        ``(T, 5F)`` float32 (:func:`window_features`).
    reference : ndarray
        ``(K, 2)`` the reference shape used, px.
    """
    per_frame, reference = frame_features(
        result.keypoints, result.fps, keypoint_weights(result), reference
    )
    return window_features(per_frame, round(window_s * result.fps)), reference
