"""Extraction: run a trained model over a whole video, streaming, resumable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bkind_model import __version__
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.infer.predictor import Predictor
from bkind_model.io.atomic import ensure_folder, require_free
from bkind_model.io.lock import RunLock
from bkind_model.io.outputs import check_output
from bkind_model.io.results import (
    FingerprintCollector,
    KeypointResult,
    ResultsWriter,
    default_keypoint_names,
)
from bkind_model.io.video import VideoSource, open_video


@dataclass
class ExtractionProgress:
    """Frames done so far; ``path`` is set on the last event, when the file is complete."""

    frames_done: int
    n_frames: int
    path: Path | None = None


def extract(
    checkpoint: str | Path | Predictor,
    video: str | Path | VideoSource,
    out_path: str | Path,
    *,
    batch_size: int = 64,
    heatmaps: bool = False,
    device: str = "auto",
) -> Iterator[ExtractionProgress]:
    """Discover keypoints on every frame of a video and write a results file.

    Frames are decoded in one sequential pass, in batches; the model runs in eval mode.
    Progress is written into ``.<name>.part`` beside ``out_path``; an interrupted
    extraction with the same checkpoint and video continues where it stopped.

    Parameters
    ----------
    checkpoint : str, Path or Predictor
        Checkpoint file, run folder, or an already loaded predictor.
    video : str, Path or VideoSource
        The video (or image folder) to process; its frame size must be the training size.
    out_path : str or Path
        Results file to write (HDF5, see :mod:`bkind_model.io.results`); an existing
        file is replaced, but never the video or the checkpoint
        (:class:`~bkind_model.io.outputs.OutputIsInputError`).
    batch_size : int
        Frames per forward pass.
    heatmaps : bool
        Store low-resolution heatmaps ``(T, K, h, w)`` float16 as well.
    device : str
        Torch device when ``checkpoint`` is a path.

    Yields
    ------
    ExtractionProgress
        After each batch; the last one carries the finished file's path.
    """
    predictor = checkpoint if isinstance(checkpoint, Predictor) else Predictor(checkpoint, device)
    source = video if isinstance(video, VideoSource) else open_video(video)
    out_path = check_output(out_path, (source.path, predictor.path), overwrite=True)
    check_frame_size(predictor, source)
    ensure_folder(out_path.parent)
    config = predictor.config
    require_free(
        out_path, _results_mb(source.n_frames, config.n_keypoints, heatmaps, predictor), 0.0
    )
    predictor.use_background_of(source)
    metadata = results_metadata(predictor, source, out_path)
    heatmap_size = None
    if heatmaps:
        stride = config.heatmap_stride
        height, width = predictor.letterbox.input_size
        heatmap_size = (height // stride, width // stride)
        box = predictor.letterbox
        metadata["letterbox"] = box.to_dict()
    lock = RunLock(out_path.parent, "bkind extract", name=f".{out_path.name}.lock")
    try:
        writer = ResultsWriter(
            out_path, source.n_frames, config.n_keypoints, metadata, heatmap_size
        )
    except BaseException:
        lock.release()
        raise
    prints = FingerprintCollector(source.n_frames)
    try:
        for start, frames in source.iter_chunks(batch_size, start=writer.frames_done):
            prints.see(start, frames)
            out = predictor.predict(frames, heatmaps=heatmaps)
            if not np.isfinite(out.keypoints).all():
                raise CheckpointError(
                    f"{predictor.path}: the model gives NaN keypoints on frames {start}-"
                    f"{start + len(frames) - 1} of {source.path}; the checkpoint is broken. "
                    "Train again (a lower lr) or use another checkpoint."
                )
            writer.write(
                start,
                out.keypoints,
                out.confidence,
                out.covariance,
                out.heatmaps,
                out.offsets,
                out.on_animal,
            )
            yield ExtractionProgress(writer.frames_done, source.n_frames)
        writer.add_metadata({"video_fingerprint": prints.fingerprint(source)})
        path = writer.finish()
    finally:
        writer.close()
        lock.release()
    yield ExtractionProgress(source.n_frames, source.n_frames, path)


def results_metadata(predictor: Predictor, source: VideoSource, out_path: Path) -> dict:
    """The attributes of a results file of ``source`` made by ``predictor``.

    The video's fingerprint (a few of its frames as small thumbnails, so that a video
    replaced by another of the same size and length is recognised later) is added when
    the frames are done (:class:`~bkind_model.io.results.FingerprintCollector`).
    """
    video_path = Path(source.path).resolve()
    return {
        "video_path": str(video_path),
        "video_relpath": os.path.relpath(video_path, out_path.parent.resolve()),
        "fps": float(source.fps),
        "frame_size": [source.height, source.width],
        "config": predictor.config.to_dict(),
        "checkpoint": str(predictor.path),
        "checkpoint_sha256": predictor.sha256,
        "checkpoint_step": predictor.step,
        "version": __version__,
        "keypoint_names": default_keypoint_names(predictor.config.n_keypoints),
    }


def check_frame_size(predictor: Predictor, source: VideoSource) -> None:
    """Refuse a video whose frames are not the size the model was trained on."""
    if (source.height, source.width) != predictor.source_size:
        raise ConfigError(
            f"{source.path}: frames are {source.width}x{source.height} px but {predictor.path} "
            f"was trained on {predictor.source_size[1]}x{predictor.source_size[0]} px videos. "
            "Train on this video size, or resize the video."
        )


def _results_mb(n_frames: int, n_keypoints: int, heatmaps: bool, predictor: Predictor) -> float:
    """Size of a results file, MiB (heatmaps counted at half their raw float16 size)."""
    per_frame = n_keypoints * (2 + 1 + 4) * 4
    if heatmaps:
        height, width = predictor.letterbox.input_size
        stride = predictor.config.heatmap_stride
        per_frame += n_keypoints * (height // stride) * (width // stride) * 2 // 2 + 8
    return (n_frames * per_frame) / 2**20 + 1.0


def extract_to_result(checkpoint, video, out_path, **kwargs) -> KeypointResult:
    """Run :func:`extract` to the end and load the results."""
    for progress in extract(checkpoint, video, out_path, **kwargs):
        if progress.path is not None:
            return KeypointResult.load(progress.path)
    raise RuntimeError("extraction ended without a results file")  # pragma: no cover
