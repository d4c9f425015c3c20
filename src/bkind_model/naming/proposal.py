"""Which frames to label: diverse poses, spread over the video.

Candidates are frames spread evenly over the video
(:func:`bkind_model.frames.sampling.evenly_spaced`) whose discovered keypoints are all
found (:func:`~bkind_model.naming.features.observed_keypoints`). Their poses (keypoints in the body frame, :mod:`bkind_model.naming.features`,
standardised) are grouped by k-means into as many clusters as frames wanted; the
candidate nearest each cluster's centre is proposed. So every kind of pose gets a label,
not only the most common, and position and heading (which the map takes out) do not
count. Frames already labelled are left out of the candidates, so asking again proposes
new frames for what the labels lack.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from bkind_model.errors import ConfigError
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.results import KeypointResult
from bkind_model.naming.features import body_features, observed_keypoints

#: Candidates per wanted frame (before leaving out labelled and unusable frames).
CANDIDATES_PER_FRAME = 50


def propose_frames(
    result: KeypointResult,
    n: int,
    *,
    exclude: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Frames to label next.

    Parameters
    ----------
    result : KeypointResult
        Discovered keypoints of the video.
    n : int
        Frames wanted, >= 1.
    exclude : ndarray, optional
        Frame numbers already labelled (never proposed again).
    seed : int
        Seed of k-means (the same seed gives the same frames).

    Returns
    -------
    ndarray
        ``(min(n, candidates),)`` sorted int frame numbers.

    Raises
    ------
    ConfigError
        If ``n`` < 1, or no frame is left to propose (no frames, every frame labelled or
        with a keypoint missing).
    """
    if n < 1:
        raise ConfigError(f"frames to propose: {n}; ask for at least 1.")
    observed = observed_keypoints(result.keypoints)
    if not observed.all(axis=1).any():
        raise ConfigError(
            f"{result.path or 'these keypoints'}: none of its {result.n_frames} frames has "
            "every keypoint found; extract the keypoints of this video again."
        )
    candidates = evenly_spaced(result.n_frames, CANDIDATES_PER_FRAME * n)
    keypoints = np.where(observed[..., None], result.keypoints, np.nan)
    _, x = body_features(keypoints, result.confidence)
    usable = np.isfinite(x[candidates]).all(axis=1)
    if exclude is not None and len(exclude):
        usable &= ~np.isin(candidates, np.asarray(exclude, np.int64))
    candidates = candidates[usable]
    if len(candidates) == 0:
        raise ConfigError(
            f"{result.path or 'these keypoints'}: no frame left to propose (every frame is "
            "labelled or has missing keypoints)."
        )
    if len(candidates) <= n:
        return candidates
    poses = x[candidates]
    scale = poses.std(axis=0)
    poses = (poses - poses.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    kmeans = KMeans(n_clusters=n, n_init=4, random_state=seed).fit(poses)
    distance = np.linalg.norm(poses - kmeans.cluster_centers_[kmeans.labels_], axis=1)
    chosen = [
        candidates[members[np.argmin(distance[members])]]
        for members in (np.flatnonzero(kmeans.labels_ == c) for c in range(n))
        if len(members)
    ]
    return np.unique(np.asarray(chosen, np.int64))
