"""Extraction: run a trained model over a whole video, streaming, resumable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bkind_model import __version__
from bkind_model.infer.predictor import Predictor
from bkind_model.io.results import KeypointResult, ResultsWriter, default_keypoint_names
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
        Results file to write (HDF5, see :mod:`bkind_model.io.results`).
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
    if (source.height, source.width) != predictor.source_size:
        raise ValueError(
            f"{source.path}: frames are {source.width}x{source.height} px but {predictor.path} "
            f"was trained on {predictor.source_size[1]}x{predictor.source_size[0]} px videos. "
            "Train on this video size, or resize the video."
        )
    predictor.use_background_of(source)
    config = predictor.config
    metadata = {
        "video_path": str(source.path),
        "fps": float(source.fps),
        "frame_size": [source.height, source.width],
        "config": config.to_dict(),
        "checkpoint": str(predictor.path),
        "checkpoint_sha256": predictor.sha256,
        "checkpoint_step": predictor.step,
        "version": __version__,
        "keypoint_names": default_keypoint_names(config.n_keypoints),
    }
    heatmap_size = None
    if heatmaps:
        stride = config.heatmap_stride
        height, width = predictor.letterbox.input_size
        heatmap_size = (height // stride, width // stride)
        box = predictor.letterbox
        metadata["letterbox"] = box.to_dict()
    writer = ResultsWriter(out_path, source.n_frames, config.n_keypoints, metadata, heatmap_size)
    try:
        for start, frames in source.iter_chunks(batch_size, start=writer.frames_done):
            out = predictor.predict(frames, heatmaps=heatmaps)
            writer.write(
                start, out.keypoints, out.confidence, out.covariance, out.heatmaps, out.offsets
            )
            yield ExtractionProgress(writer.frames_done, source.n_frames)
        path = writer.finish()
    finally:
        writer.close()
    yield ExtractionProgress(source.n_frames, source.n_frames, path)


def extract_to_result(checkpoint, video, out_path, **kwargs) -> KeypointResult:
    """Run :func:`extract` to the end and load the results."""
    for progress in extract(checkpoint, video, out_path, **kwargs):
        if progress.path is not None:
            return KeypointResult.load(progress.path)
    raise RuntimeError("extraction ended without a results file")  # pragma: no cover
