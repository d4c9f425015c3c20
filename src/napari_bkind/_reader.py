"""napari reader: videos and image folders as lazy Image layers with time first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bkind_model.io.video import open_video

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader for a video file or an image folder, or None if not ours.

    napari calls this only for the file patterns listed in ``napari.yaml`` and folders.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_video if Path(path).exists() else None


def read_video(path: str | list[str]) -> list[LayerData]:
    """Open a video lazily as one RGB Image layer ``(T, H, W, 3)``.

    Frames are decoded only when napari shows them; ``metadata`` carries ``fps``,
    ``n_frames`` and the source path for the widgets.
    """
    if isinstance(path, list):
        path = path[0]
    source = open_video(path)
    metadata = {
        "bkind_source": str(source.path),
        "fps": source.fps,
        "n_frames": source.n_frames,
    }
    return [
        (source.frames, {"name": source.path.stem, "rgb": True, "metadata": metadata}, "image")
    ]
