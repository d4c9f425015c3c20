"""Baselines scored by the same regression as keypoints: a blob tracker, the mean pose.

The blob tracker follows the largest foreground blob (frame minus the median background)
and describes it by its centroid, orientation, length and width; keypoints that say less
about the pose than this say little. The mean pose (no features) is the other floor.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bkind_model.frames.background import median_background, to_gray
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.frames.windows import FOREGROUND_THRESHOLD
from bkind_model.io.video import VideoSource


def blob_features(
    frames: np.ndarray, background: np.ndarray, threshold: float = FOREGROUND_THRESHOLD
) -> np.ndarray:
    """Position, orientation, length and width of the largest foreground blob per frame.

    Parameters
    ----------
    frames : ndarray
        ``(N, H, W, 3)`` uint8.
    background : ndarray
        ``(H, W)`` gray background in [0, 1] (:func:`median_background`).
    threshold : float
        Absolute gray difference that counts as foreground.

    Returns
    -------
    ndarray
        ``(N, 8)``: centroid x, y (px), the major axis scaled by the length (2 values), the
        major axis scaled by the width (2), length and width (px, 2 standard deviations).
        A frame without foreground repeats the previous frame's features.
    """
    features = np.zeros((len(frames), 8))
    previous = np.zeros(8)
    for i, frame in enumerate(frames):
        mask = np.abs(to_gray(frame) - background) > threshold
        labels, count = ndimage.label(ndimage.binary_opening(mask))
        if count == 0:
            features[i] = previous
            continue
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, np.arange(1, count + 1))
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        points = np.column_stack([xs, ys]).astype(np.float64)
        centre = points.mean(0)
        values, vectors = np.linalg.eigh(np.cov((points - centre).T) + 1e-6 * np.eye(2))
        axis = vectors[:, 1] * np.sign(vectors[0, 1] or 1.0)
        length, width = 2 * np.sqrt(values[1]), 2 * np.sqrt(values[0])
        previous = np.array([*centre, *(axis * length), *(axis * width), length, width])
        features[i] = previous
    return features


def blob_features_of_video(
    source: VideoSource, n_background: int = 100, chunk: int = 64
) -> np.ndarray:
    """:func:`blob_features` over a whole video, streaming.

    Parameters
    ----------
    source : VideoSource
        The video (or image folder).
    n_background : int
        Frames sampled evenly across the video for the median background.
    chunk : int
        Frames decoded per batch.

    Returns
    -------
    ndarray
        ``(T, 8)`` blob features.
    """
    background = median_background(source[evenly_spaced(source.n_frames, n_background)]).gray
    parts = [blob_features(frames, background) for _, frames in source.iter_chunks(chunk)]
    return np.concatenate(parts)
