"""napari reader: videos, image folders and B-KinD results files.

* A video file or an image folder opens as a lazy Image layer ``(T, H, W, 3)``, time
  first; frames are decoded only when napari shows them.
* A results file (``*.bkind.h5``, as ``bkind extract`` names them) opens as keypoint
  layers (see :mod:`napari_bkind._layers`) plus its video when the video is found.
  Other ``.h5`` files (DeepLabCut's, SLEAP's, NWB ...) are not claimed: napari offers
  them only to their own readers (napari-deeplabcut, movement). napari's built-in reader
  and napari-deeplabcut's also claim ``.bkind.h5`` files and videos: napari asks once
  which to use, and remembers the choice (File > Preferences > Plugins); README's table
  says which plugin claims what.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import napari
from napari.layers import Image
from napari.utils.notifications import show_warning

from bkind_model.errors import BKindError
from bkind_model.io.results import FORMAT, KeypointResult
from bkind_model.io.video import VideoSource, open_video
from napari_bkind._layers import AXES, LayerData, result_layers
from napari_bkind._session import SOURCE_KEY
from napari_bkind._trajectories import follow_viewed_frames

RESULTS_SUFFIXES = (".h5", ".hdf5")

Reader = Callable[[str | list[str]], list[LayerData]]


def get_reader(path: str | list[str]) -> Reader | None:
    """Return a reader for a video, an image folder or a results file; None if not ours.

    napari calls this only for the file patterns listed in ``napari.yaml`` and folders.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not Path(path).exists():
        return None
    if Path(path).suffix.lower() in RESULTS_SUFFIXES:
        # A damaged file named as ours gets our reader, whose error says what is wrong.
        ours = is_results_file(path) or Path(path).name.lower().endswith(".bkind.h5")
        return read_results if ours else None
    return read_video


def is_results_file(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file of B-KinD results (format ``bkind-results-1``)."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def read_video(path: str | list[str]) -> list[LayerData]:
    """Open a video lazily as one RGB Image layer ``(T, H, W, 3)``, axes ``frame, y, x``.

    Frames are decoded only when napari shows them; ``metadata`` carries ``fps``,
    ``n_frames`` and the source path (``bkind_source``) for the widgets.
    """
    if isinstance(path, list):
        path = path[0]
    source = open_video(path)
    kwargs = {
        "name": source.path.stem,
        "rgb": True,
        "metadata": video_metadata(source),
        "axis_labels": AXES,
    }
    return [(source.frames, kwargs, "image")]


def video_metadata(source: VideoSource) -> dict[str, Any]:
    """What the widgets read from a video layer: ``bkind_source`` (path), ``fps``, ``n_frames``."""
    return {SOURCE_KEY: str(source.path), "fps": source.fps, "n_frames": source.n_frames}


def open_video_layer(viewer: napari.Viewer | None, video: Path) -> Image | None:
    """The Image layer of ``viewer`` showing ``video``, by our reader or another; else None.

    A layer another reader opened gets the metadata of :func:`read_video`, so the
    widgets list it as a video.
    """
    if viewer is None:
        return None
    target = video.resolve()
    for layer in viewer.layers:
        if not isinstance(layer, Image):
            continue
        shown = layer.metadata.get(SOURCE_KEY) or layer.source.path
        if shown and Path(shown).resolve() == target:
            if SOURCE_KEY not in layer.metadata:
                with open_video(video) as source:
                    layer.metadata.update(video_metadata(source))
            return layer
    return None


def find_video(results_path: str | Path, video_path: str | None) -> Path | None:
    """The video of a results file: where it was, or beside the results file; else None."""
    if not video_path:
        return None
    recorded = Path(video_path)
    for candidate in (recorded, Path(results_path).parent / recorded.name):
        if candidate.exists():
            return candidate
    return None


def read_results(path: str | list[str]) -> list[LayerData]:
    """Open a results file: its video (when found) under its keypoints, trajectories, heatmaps.

    A results file whose video is missing still shows its keypoints, with a warning.
    The trajectories follow the viewed frame in the viewer napari opens the file into;
    a video already open there is reused, not opened again.
    """
    if isinstance(path, list):
        path = path[0]
    result = KeypointResult.load(path)
    viewer = napari.current_viewer()
    recorded = result.metadata.get("video_path")
    located = result.video_path
    video = find_video(path, str(located) if located is not None else None)
    layers: list[LayerData] = []
    if recorded is None:
        show_warning(
            f"{Path(path).name} records no video; showing the keypoints alone. "
            "Open the video with File > Open."
        )
    elif video is None:
        show_warning(
            f"{Path(path).name}: its video {recorded} was not found (nor beside the results "
            "file); showing the keypoints without it. Open the video with File > Open."
        )
    elif open_video_layer(viewer, video) is None:
        try:
            layers += read_video(str(video))
        except BKindError as exc:
            show_warning(f"{Path(path).name}: its video cannot be opened ({exc}); keypoints only.")
    follow_viewed_frames(viewer)
    return layers + result_layers(result, path)
