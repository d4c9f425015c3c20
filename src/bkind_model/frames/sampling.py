"""Which frames to look at: frame numbers spread evenly over a video, and reading them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bkind_model.io.video import VideoSource


def evenly_spaced(n_frames: int, n: int) -> np.ndarray:
    """Up to ``n`` distinct frame numbers spread evenly from the first frame to the last.

    Parameters
    ----------
    n_frames : int
        Frames in the video (or in the range sampled), >= 1.
    n : int
        Frames wanted; fewer come back when the video is shorter.

    Returns
    -------
    ndarray
        ``(min(n, n_frames),)`` sorted int frame numbers, rounded to the nearest frame,
        0 and ``n_frames - 1`` included.
    """
    return np.unique(np.linspace(0, n_frames - 1, min(n, n_frames)).round().astype(int))


def sample_frames(
    source: VideoSource,
    n_samples: int,
    chunk: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Frames spread evenly across a video (:func:`evenly_spaced`).

    Short videos are decoded in chunks from start to end (no seeks); long ones are read
    frame by frame at the sampled positions (a seek each).

    Parameters
    ----------
    source : VideoSource
        The video.
    n_samples : int
        Frames wanted.
    chunk : int
        Frames decoded at once when reading the whole video.
    progress : callable, optional
        ``f(done, total)`` after each frame or chunk.

    Returns
    -------
    ndarray
        ``(n, H, W, 3)`` uint8 RGB, ``n = min(n_samples, source.n_frames)``.
    """
    n_frames = source.n_frames
    index = evenly_spaced(n_frames, n_samples)
    if n_frames > 20 * len(index):  # seeking beats decoding everything
        frames = []
        for done, t in enumerate(index, 1):
            frames.append(source[int(t)])
            if progress:
                progress(done, len(index))
        return np.stack(frames)
    wanted = set(index.tolist())
    kept = []
    for start, block in source.iter_chunks(chunk):
        kept += [block[t - start] for t in range(start, start + len(block)) if t in wanted]
        if progress:
            progress(min(start + len(block), n_frames), n_frames)
    return np.stack(kept)
