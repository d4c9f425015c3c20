"""What a map to named bodyparts (and the choice of frames to label) sees of a frame.

Discovered keypoints in the animal's body frame (:mod:`bkind_model.pose.body_frame`):
where the animal is and which way it faces are taken out, so a few labelled frames need
only teach the pose. Optionally the keypoints' heatmap confidence and covariance (rotated
into the body frame) and the blob tracker's description of the animal (relative to the
body frame) are appended.

Keypoints that are not finite, or impossibly far from all the others
(:func:`observed_keypoints`), count as missing everywhere: one damaged coordinate must
not move every frame's body frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bkind_model.pose.body_frame import BodyFrame, body_frame


@dataclass(frozen=True)
class FeatureSet:
    """Which features a map uses besides the keypoints in body coordinates.

    Attributes
    ----------
    uncertainty : bool
        The keypoints' confidence and their covariance in body coordinates (3 entries).
    blob : bool
        The blob tracker's centroid and axis (doubled angle, so its sign does not matter)
        in body coordinates, its length and width.
    blob_frame : bool
        Place the body frame on the blob: its origin at the blob's centroid, its x axis
        along the blob's major axis, pointing the way the keypoints' body frame points
        (the blob alone cannot tell head from tail).
    image_frame : bool
        No body frame: keypoints and bodyparts stay in image coordinates (for an animal
        that does not move or turn, e.g. head-fixed, where aligning only adds noise).
    fusion : bool
        Also fit the blob baseline (a ridge on the blob's features in image coordinates)
        and combine both predictions by their inverse covariances, so on each frame the
        more certain one counts more (the map's grows where the keypoints are unusual).
    """

    uncertainty: bool = False
    blob: bool = False
    blob_frame: bool = False
    image_frame: bool = False
    fusion: bool = False

    @property
    def needs_blob(self) -> bool:
        """Whether these features need the blob tracker's features of the frames."""
        return self.blob or self.blob_frame or self.fusion


#: The keypoints in body coordinates alone.
KEYPOINTS_ONLY = FeatureSet()

#: A coordinate farther than this many typical deviations from the median of all the
#: video's coordinates is no position in the video (a damaged value, e.g. -1e30).
OUTLIER_DEVIATIONS = 1000.0


def observed_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """Which keypoints are positions in the video: finite and not absurdly far away.

    A coordinate counts as missing when it is NaN or infinite, or when it lies farther
    from the median of every finite coordinate of the video than
    :data:`OUTLIER_DEVIATIONS` times their median deviation (at least 1 px): no animal
    spans a thousand times its own arena, so such a value is damage, and leaving it in
    would move the body frame's reference (a weighted mean over all frames) and every
    statistic over frames.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` keypoints, px; NaN where missing.

    Returns
    -------
    ndarray
        ``(T, K)`` bool, True where both coordinates are usable.
    """
    points = np.asarray(keypoints, np.float64)
    finite = np.asarray(np.isfinite(points).all(axis=-1))
    if not finite.any():
        return finite
    seen = points[finite]  # (N, 2)
    median = np.median(seen, axis=0)
    typical = max(float(np.median(np.abs(seen - median))), 1.0)
    with np.errstate(invalid="ignore"):
        near = (np.abs(points - median) <= OUTLIER_DEVIATIONS * typical).all(axis=-1)
    return np.asarray(finite & near)


def body_features(
    keypoints: np.ndarray,
    confidence: np.ndarray | None = None,
    covariance: np.ndarray | None = None,
    *,
    reference: np.ndarray | None = None,
    rigidity: np.ndarray | None = None,
    blob: np.ndarray | None = None,
    features: FeatureSet = KEYPOINTS_ONLY,
) -> tuple[BodyFrame, np.ndarray]:
    """The body frame of every frame and the frame's features in it.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` discovered keypoints, px; NaN where missing.
    confidence : ndarray, optional
        ``(T, K)`` heatmap confidence: the weights of the body frame's fit, and features
        with ``features.uncertainty``.
    covariance : ndarray, optional
        ``(T, K, 2, 2)`` px^2, needed with ``features.uncertainty``.
    reference : ndarray, optional
        ``(K, 2)`` reference shape of the body frame (that of the frames a map was fitted
        on); estimated from ``keypoints`` when None.
    rigidity : ndarray, optional
        ``(K,)`` the keypoints' weights in the alignment that go with ``reference``
        (:attr:`BodyFrame.rigidity` of the fit).
    blob : ndarray, optional
        ``(T, 8)`` :func:`bkind_model.evaluate.baselines.blob_features`, needed with
        ``features.blob``.
    features : FeatureSet
        What to append to the keypoints.

    Returns
    -------
    frame : BodyFrame
        Centres and rotations per frame.
    x : ndarray
        ``(T, F)`` float64 features; NaN in frames with a missing keypoint.
    """
    keypoints = np.asarray(keypoints, np.float64)
    n = len(keypoints)
    frame = body_frame(keypoints, confidence, reference, rigidity)
    if features.needs_blob and blob is None:
        raise ValueError("blob features need the blob tracker's features")
    if features.blob_frame:
        frame = on_blob(frame, np.asarray(blob, np.float64))
    if features.image_frame:
        frame = replace(frame, centre=np.zeros((n, 2)), rotation=np.tile(np.eye(2), (n, 1, 1)))
    parts = [frame.to_body(keypoints).reshape(n, -1)]
    if features.uncertainty:
        if confidence is None or covariance is None:
            raise ValueError("uncertainty features need the confidence and the covariance")
        rotation = frame.rotation[:, None]  # (T, 1, 2, 2): body -> image
        body_cov = np.swapaxes(rotation, -1, -2) @ np.asarray(covariance, np.float64) @ rotation
        parts += [
            np.asarray(confidence, np.float64).reshape(n, -1),
            body_cov[..., [0, 1, 1], [0, 0, 1]].reshape(n, -1),
        ]
    if features.blob:
        blob = np.asarray(blob, np.float64)
        centroid = frame.to_body(blob[:, None, :2])[:, 0]
        heading = frame.heading
        angle = 2 * (np.arctan2(blob[:, 3], blob[:, 2]) - heading)  # axis sign-free
        parts += [centroid, np.column_stack([np.cos(angle), np.sin(angle)]), blob[:, 6:8]]
    return frame, np.concatenate(parts, axis=1)


def on_blob(frame: BodyFrame, blob: np.ndarray) -> BodyFrame:
    """``frame`` moved onto the blob: centroid, major axis signed by ``frame``'s heading.

    Parameters
    ----------
    frame : BodyFrame
        The keypoints' body frame (its heading gives the axis its sign).
    blob : ndarray
        ``(T, 8)`` :func:`bkind_model.evaluate.baselines.blob_features`.
    """
    angle = np.arctan2(blob[:, 3], blob[:, 2])
    angle = np.where(np.cos(angle - frame.heading) < 0, angle + np.pi, angle)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    return replace(frame, centre=blob[:, :2].copy(), rotation=rotation)
