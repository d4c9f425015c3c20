"""Write frames to an H.264 video through imageio-ffmpeg, atomically."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from bkind_model.io.atomic import atomic_path


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 18,
    keyframe_interval: int | None = None,
    bframes: int | None = None,
    preset: str = "veryfast",
) -> Path:
    """Encode RGB frames as an H.264 mp4 (yuv420p).

    The file appears under its final name only when encoding succeeded, so an interrupted
    write never leaves a half-written video behind.

    Parameters
    ----------
    path : str or Path
        Output file; its suffix chooses the container (``.mp4``, ``.avi``, ``.mkv`` ...).
    frames : iterable of ndarray
        Frames ``(H, W, 3)`` uint8 RGB, all the same size. ``H`` and ``W`` must be even.
    fps : float
        Frame rate in frames per second.
    crf : int
        x264 constant rate factor (lower is better quality; 18 is visually lossless).
    keyframe_interval : int, optional
        Frames between keyframes (x264 ``-g``); ffmpeg's default when None.
    bframes : int, optional
        Number of consecutive B-frames (x264 ``-bf``); ffmpeg's default when None.
    preset : str
        x264 speed preset.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    output_params = ["-crf", str(crf), "-preset", preset]
    if keyframe_interval is not None:
        output_params += ["-g", str(keyframe_interval), "-keyint_min", str(keyframe_interval)]
        output_params += ["-sc_threshold", "0"]
    if bframes is not None:
        output_params += ["-bf", str(bframes)]
    writer = None
    with atomic_path(path, suffix=path.suffix) as tmp:
        try:
            for frame in frames:
                frame = np.ascontiguousarray(frame, dtype=np.uint8)
                if writer is None:
                    writer = _start_writer(tmp, path, frame.shape, fps, output_params)
                writer.send(frame)
            if writer is None:
                raise ValueError(f"{path}: no frames to write.")
        finally:
            if writer is not None:  # ffmpeg is done with the file before it is kept or removed
                writer.close()
    return path


def _start_writer(
    tmp: Path, path: Path, shape: tuple[int, ...], fps: float, output_params: list[str]
) -> Generator[None, np.ndarray | None, None]:
    """An imageio-ffmpeg H.264 writer of ``(H, W, 3)`` frames into ``tmp``, primed."""
    height, width = shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: frame size {width}x{height} must be even for H.264.")
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        quality=None,
        output_params=output_params,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    return writer
