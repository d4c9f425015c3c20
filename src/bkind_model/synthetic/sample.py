"""Synthetic samples on disk: an H.264 video and its ground truth in an ``.npz`` beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bkind_model.io.atomic import atomic_path
from bkind_model.io.video_writer import write_video
from bkind_model.jsonfile import loads_json
from bkind_model.synthetic.generator import Scene, SyntheticConfig, SyntheticVideo

GROUND_TRUTH_SUFFIX = ".groundtruth.npz"
_FORMAT_VERSION = 1


def ground_truth_path(video_path: str | Path) -> Path:
    """The ground-truth file of a sample video: ``mouse.mp4`` -> ``mouse.groundtruth.npz``.

    A path that already is a ground-truth file is returned unchanged.
    """
    path = Path(video_path)
    if path.name.endswith(GROUND_TRUTH_SUFFIX):
        return path
    return path.with_name(path.stem + GROUND_TRUTH_SUFFIX)


def write_sample(
    path: str | Path,
    config: SyntheticConfig,
    *,
    with_masks: bool = True,
    keep_frames: bool = True,
    chunk: int = 64,
    crf: int = 18,
) -> SyntheticVideo:
    """Generate a synthetic video and write it as H.264 with its ground truth beside it.

    Frames are generated and encoded ``chunk`` at a time, so with ``keep_frames=False`` and
    ``with_masks=False`` a long video never needs more than a chunk of frames in memory.

    Parameters
    ----------
    path : str or Path
        Video file to write (``.mp4``); the ground truth goes to :func:`ground_truth_path`.
        Both files appear only once complete.
    config : SyntheticConfig
        What to generate (height and width must be even for H.264).
    with_masks : bool
        Whether to draw and save the animal labels and shadow masks ``(T, H, W)``.
    keep_frames : bool
        Whether the returned video holds the frames ``(T, H, W, 3)`` (else ``frames`` is None).
    chunk : int
        Frames generated at a time.
    crf : int
        x264 constant rate factor (18 is visually lossless).

    Returns
    -------
    SyntheticVideo
        The generated clip's ground truth, with the frames if ``keep_frames``.
    """
    path = Path(path)
    scene = Scene(config)
    shape = (config.n_frames, config.height, config.width)
    kept = np.empty((*shape, 3), dtype=np.uint8) if keep_frames else None
    labels = np.empty(shape, dtype=np.uint8) if with_masks else None
    shadow_mask = np.empty(shape, dtype=bool) if with_masks else None

    def frames() -> Iterator[np.ndarray]:
        for part in scene.chunks(chunk, with_masks):
            window = slice(part.start, part.start + len(part.frames))
            if kept is not None:
                kept[window] = part.frames
            if labels is not None and shadow_mask is not None:
                assert part.animal_labels is not None and part.shadow_mask is not None
                labels[window] = part.animal_labels
                shadow_mask[window] = part.shadow_mask
            yield from part.frames

    write_video(path, frames(), config.fps, crf=crf)
    video = scene.video(kept, labels, shadow_mask)
    save_ground_truth(video, ground_truth_path(path))
    return video


def save_ground_truth(video: SyntheticVideo, path: str | Path) -> Path:
    """Save a clip's ground truth (everything but the frames) to a compressed ``.npz``.

    Parameters
    ----------
    video : SyntheticVideo
        The clip.
    path : str or Path
        File to write; it appears only once complete.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    arrays = {
        "format_version": np.array(_FORMAT_VERSION),
        "joints": video.joints,
        "behaviour": video.behaviour,
        "background": video.background,
        "joint_names": np.array(video.joint_names),
        "bones": np.array(video.bones, dtype=np.int64),
        "behaviour_names": np.array(video.behaviour_names),
        "fps": np.array(video.fps),
        "config": np.array(json.dumps(video.config.to_dict())),
    }
    if video.animal_labels is not None and video.shadow_mask is not None:
        arrays["animal_labels"] = video.animal_labels
        arrays["shadow_mask_bits"] = np.packbits(video.shadow_mask, axis=-1)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez_compressed(file, **arrays)  # type: ignore[arg-type]  # numpy's stub
    return path


def load_ground_truth(path: str | Path) -> SyntheticVideo:
    """Load the ground truth written by :func:`write_sample`.

    Parameters
    ----------
    path : str or Path
        The sample video or its ground-truth ``.npz``.

    Returns
    -------
    SyntheticVideo
        The ground truth, with ``frames`` None (read the video for them); the masks are None
        if the sample was written without them.

    Raises
    ------
    FileNotFoundError
        If there is no ground-truth file for ``path``.
    """
    gt_path = ground_truth_path(path)
    if not gt_path.is_file():
        raise FileNotFoundError(
            f"{gt_path}: no ground truth here. Write the sample with write_sample() first."
        )
    with np.load(gt_path, allow_pickle=False) as data:
        config = SyntheticConfig.from_dict(
            loads_json(str(data["config"]), source=f"{gt_path} config")
        )
        labels = data["animal_labels"] if "animal_labels" in data else None
        shadow_mask = None
        if "shadow_mask_bits" in data:
            bits = data["shadow_mask_bits"]
            shadow_mask = np.unpackbits(bits, axis=-1, count=config.width).view(bool)
        return SyntheticVideo(
            frames=None,
            joints=data["joints"],
            behaviour=data["behaviour"],
            animal_labels=labels,
            shadow_mask=shadow_mask,
            background=data["background"],
            joint_names=tuple(str(n) for n in data["joint_names"]),
            bones=tuple((int(a), int(b)) for a, b in data["bones"]),
            behaviour_names=tuple(str(n) for n in data["behaviour_names"]),
            fps=float(data["fps"]),
            config=config,
        )
