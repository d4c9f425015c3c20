"""Trajectories as a Tracks layer that holds only the frames around the one viewed.

napari's Tracks layer uploads every vertex to the GPU and hides the ones outside the
trail in a shader: one hour of 10 keypoints (1.08 M vertices) costs ~1.9 GB with a
window. A trail shows a few dozen frames, so the layer here holds a window of frames
around the viewed one (trail and head lengths plus :data:`MARGIN_FRAMES` on each side)
and moves it when the viewer steps out of it. The whole ``(T, K, 2)`` trajectories
(8.6 MB for an hour of 10 keypoints) stay in the layer's metadata.

The window follows the viewer once :func:`follow_viewed_frames` was called for it: the
reader does so for the viewer it opens into, the dock widgets for theirs.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import napari
import numpy as np
from napari.layers import Layer, Tracks

from napari_bkind._palette import keypoint_colormap

if TYPE_CHECKING:
    from napari_bkind._layers import LayerData

#: Metadata keys of trajectory layers: all keypoints ``(T, K, 2)`` (x, y) px, and the
#: ``(start, stop)`` frames the layer's data holds now.
TRAJECTORIES_KEY = "bkind_trajectories"
WINDOW_KEY = "bkind_trajectory_window"
#: Frames held beyond the trail (and head) on each side of the viewed frame.
MARGIN_FRAMES = 500
#: Default trail length, frames.
TAIL_FRAMES = 10

_FOLLOWED_VIEWERS: weakref.WeakSet = weakref.WeakSet()
_FOLLOWED_LAYERS: weakref.WeakSet = weakref.WeakSet()


def window_around(frame: int, n_frames: int, reach: int) -> tuple[int, int]:
    """Frames ``[start, stop)`` within ``reach + MARGIN_FRAMES`` of ``frame``, clipped."""
    span = reach + MARGIN_FRAMES
    return max(0, frame - span), min(n_frames, frame + span + 1)


def tracks_window(keypoints: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, dict]:
    """Tracks data and features of frames ``[start, stop)``: one track per keypoint.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) px; NaN positions are left out.
    start, stop : int
        First frame and one past the last frame to hold.

    Returns
    -------
    data : ndarray
        ``(N, 4)`` ``[track_id, frame, y, x]``.
    features : dict
        ``keypoint`` (id) and ``colour`` (``(id + 0.5) / K``, the value that
        :func:`~napari_bkind._layers.keypoint_colormap` maps to the keypoint's colour).
    """
    window = keypoints[start:stop]
    n_frames, n_keypoints = window.shape[:2]
    ids = np.repeat(np.arange(n_keypoints), n_frames)
    frames = np.tile(np.arange(start, start + n_frames), n_keypoints)
    xy = window.transpose(1, 0, 2).reshape(-1, 2)
    keep = np.isfinite(xy).all(axis=1)
    data = np.column_stack([ids, frames, xy[:, 1], xy[:, 0]])[keep]
    ids = ids[keep]
    return data, {"keypoint": ids, "colour": (ids + 0.5) / n_keypoints}


def keypoint_tracks(
    keypoints: np.ndarray,
    *,
    name: str = "trajectories",
    metadata: dict | None = None,
    frame: int = 0,
) -> LayerData:
    """Trajectories around ``frame``: one track per keypoint, coloured like its points.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) px of every frame; NaN positions are left out.
    name : str
        Layer name.
    metadata : dict, optional
        Layer metadata (the trajectories and window are added to it).
    frame : int
        The frame viewed first.

    Returns
    -------
    LayerData
        ``(data (N, 4) [track_id, frame, y, x], kwargs, "tracks")``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    start, stop = window_around(frame, len(keypoints), TAIL_FRAMES)
    data, features = tracks_window(keypoints, start, stop)
    kwargs = {
        "name": name,
        "features": features,
        "color_by": "colour",
        "colormaps_dict": {"colour": keypoint_colormap(keypoints.shape[1])},
        "tail_length": TAIL_FRAMES,
        "tail_width": 2,
        "metadata": (metadata or {}) | {TRAJECTORIES_KEY: keypoints, WINDOW_KEY: (start, stop)},
    }
    return data, kwargs, "tracks"


def _covers_view(layer: Tracks, frame: int, n_frames: int) -> bool:
    """Whether the layer's window holds the trail and head of ``frame``."""
    start, stop = layer.metadata[WINDOW_KEY]
    return (
        start <= max(0, frame - layer.tail_length)
        and min(n_frames, frame + layer.head_length + 1) <= stop
    )


def move_window(layer: Tracks) -> None:
    """Give ``layer`` the frames around the one it shows, if its window does not cover them."""
    frame = layer.current_time
    keypoints = layer.metadata.get(TRAJECTORIES_KEY)
    if frame is None or keypoints is None:
        return
    frame = round(frame)
    if _covers_view(layer, frame, len(keypoints)):
        return
    reach = int(max(layer.tail_length, layer.head_length))
    start, stop = window_around(frame, len(keypoints), reach)
    data, features = tracks_window(keypoints, start, stop)
    layer.metadata[WINDOW_KEY] = (start, stop)  # first: setting data slices the layer again
    layer.color_by = "track_id"  # new data resets the features: no warning about 'colour'
    layer.data = data
    layer.features = features
    layer.color_by = "colour"


def _follow_layer(layer: Layer) -> None:
    if not isinstance(layer, Tracks) or TRAJECTORIES_KEY not in layer.metadata:
        return
    if layer in _FOLLOWED_LAYERS:
        return
    _FOLLOWED_LAYERS.add(layer)
    ref = weakref.ref(layer)

    def on_change(_event=None) -> None:
        if (tracks := ref()) is not None:
            move_window(tracks)

    # set_data is emitted each time the layer is sliced for a new frame.
    layer.events.set_data.connect(on_change)
    layer.events.tail_length.connect(on_change)
    layer.events.head_length.connect(on_change)
    move_window(layer)


def follow_viewed_frames(viewer: napari.Viewer | None) -> None:
    """Make the trajectory layers of ``viewer``, now and later, follow the viewed frame.

    Calling it again for the same viewer does nothing. Pass the viewer itself, not the
    proxy napari hands a dock widget (see :func:`napari_bkind._session.unproxied`).
    """
    if viewer is None or viewer in _FOLLOWED_VIEWERS:
        return
    _FOLLOWED_VIEWERS.add(viewer)
    viewer.layers.events.inserted.connect(lambda event: _follow_layer(event.value))
    for layer in viewer.layers:
        _follow_layer(layer)
