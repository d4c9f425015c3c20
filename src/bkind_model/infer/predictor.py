"""A trained model ready to read keypoints off frames (eval mode, no gradients)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bkind_model.config import Config
from bkind_model.devices import autocast, place_model, resolve_device
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.frames.background import Background
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.masks import FrameMasker
from bkind_model.frames.pipeline import FramePipeline, pipeline_from_samples
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.frames.windows import InputWindows, on_foreground
from bkind_model.io.checkpoint import (
    check_finite_weights,
    checkpoint_config,
    checkpoint_file,
    load_checkpoint_and_hash,
)
from bkind_model.io.video import VideoSource
from bkind_model.model.network import BKinD

#: Distance from the animal's blob within which a keypoint is on the animal, as a share
#: of the model input's side (about 5% of the animal's length for a window on the animal).
ON_ANIMAL_RADIUS = 0.02


@dataclass
class Prediction:
    """Keypoints of a batch of frames, in source pixels.

    Attributes
    ----------
    keypoints : ndarray
        ``(B, K, 2)`` (x, y) px.
    confidence : ndarray
        ``(B, K)`` heatmap confidence (1 = uniform).
    covariance : ndarray
        ``(B, K, 2, 2)`` px^2.
    heatmaps : ndarray or None
        ``(B, K, h, w)`` softmaxed heatmaps over each input window, when asked for.
    offsets : ndarray or None
        ``(B, 2)`` (x0, y0) of each input window in resized pixels (see
        :meth:`Letterbox.to_source`), to place the heatmaps on the frame.
    on_animal : ndarray or None
        ``(B, K)`` bool: the keypoint lies on the animal's foreground blob (within
        :data:`ON_ANIMAL_RADIUS` of the input's side), when the model finds the animal
        against a background.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    covariance: np.ndarray
    heatmaps: np.ndarray | None = None
    offsets: np.ndarray | None = None
    on_animal: np.ndarray | None = None


class Predictor:
    """Loads a checkpoint and predicts keypoints on frames of the video size it was trained on.

    Parameters
    ----------
    checkpoint : str or Path
        A checkpoint file or a run folder holding ``checkpoint.pt``.
    device : str
        ``"auto"`` or a torch device string.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto") -> None:
        self.path = checkpoint_file(checkpoint)
        state, self.sha256 = load_checkpoint_and_hash(self.path)
        check_finite_weights(state, self.path)
        self.config: Config = checkpoint_config(state, self.path)
        if "letterbox" not in state or "background" not in state:
            raise CheckpointError(f"{self.path}: checkpoint lacks its geometry; it is damaged.")
        letterbox = Letterbox.from_dict(state["letterbox"])
        gray = state["background"].numpy()
        masker = None
        if self.config.masks is not None:
            if "mask_background" not in state:
                raise CheckpointError(f"{self.path}: checkpoint lacks its mask background.")
            static = state["static_mask"].numpy() if "static_mask" in state else None
            masker = FrameMasker(self.config.masks, state["mask_background"].numpy(), static)
        image = masker.background if masker is not None else np.zeros((*gray.shape, 3), np.uint8)
        self.pipeline = FramePipeline(
            letterbox,
            Background(image, gray, float("nan"), 0),
            InputWindows(letterbox, gray),
            masker,
        )
        self._static = masker.static if masker is not None else None
        self._last_centre: np.ndarray | None = None
        self.device = resolve_device(device)
        # The checkpoint holds every weight: no pretrained file is read again.
        self.model = BKinD(self.config.replace(pretrained=None))
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[:3]
            raise CheckpointError(
                f"{self.path}: the weights do not fit the stored config "
                f"({' '.join(line.strip() for line in first)[:300]} ...); the file is damaged "
                "or was edited. Use another checkpoint or train again."
            ) from exc
        place_model(self.model, self.device).eval()
        self.step = int(state["step"])

    @property
    def letterbox(self) -> Letterbox:
        """The model's view of frames (scaling and window)."""
        return self.pipeline.letterbox

    @property
    def source_size(self) -> tuple[int, int]:
        """``(height, width)`` of the frames this model expects, px."""
        return self.letterbox.source_size

    def use_background_of(self, source: VideoSource, n_samples: int = 30) -> None:
        """Find the animal against the median of ``source`` (another session, arena ...).

        Parameters
        ----------
        source : VideoSource
            The video about to be processed.
        n_samples : int
            Frames sampled evenly across it (each a seek: about 0.1 s on long-GOP H.264).
        """
        samples = self.pipeline.resize(source[evenly_spaced(source.n_frames, n_samples)])
        self.pipeline = pipeline_from_samples(
            self.letterbox, samples, self.config.masks, static=self._static
        )
        self._last_centre = None

    def restart_stream(self) -> None:
        """Forget the previous frame's window: the next frames need not follow the last."""
        self._last_centre = None

    @torch.no_grad()
    def predict(self, frames: np.ndarray, heatmaps: bool = False) -> Prediction:
        """Keypoints of frames.

        Consecutive calls are treated as a stream: a frame where the animal is not found
        keeps the window of the previous frame.

        Parameters
        ----------
        frames : ndarray
            ``(B, H, W, 3)`` uint8 RGB frames of :attr:`source_size`.
        heatmaps : bool
            Also return the softmaxed heatmaps.

        Returns
        -------
        Prediction
        """
        if frames.shape[1:3] != self.source_size:
            raise ConfigError(
                f"frames are {frames.shape[2]}x{frames.shape[1]} px but the model was trained on "
                f"{self.source_size[1]}x{self.source_size[0]} px videos."
            )
        resized = self.pipeline.resize(frames)
        inputs = self.pipeline.inputs(resized, device=self.device, previous=self._last_centre)
        if inputs.centres is not None:
            self._last_centre = inputs.centres[-1]
        offsets = inputs.offsets
        with autocast(self.device):
            kp = self.model.keypoints(inputs.images)
        mean = kp.mean.float().cpu().numpy()
        cov = kp.covariance.float().cpu().numpy()
        keypoints = self.letterbox.to_source(mean, offsets[:, None, :]).astype(np.float32)
        return Prediction(
            keypoints,
            kp.confidence.float().cpu().numpy(),
            self.letterbox.covariance_to_source(cov).astype(np.float32),
            kp.probability.float().cpu().numpy() if heatmaps else None,
            offsets,
            self._on_animal(self.pipeline.unshadowed(resized), keypoints),
        )

    def _on_animal(self, resized: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """``(B, K)`` keypoints (source px) on the animal's blob of the resized frames."""
        scales = np.array(resized.shape[2:0:-1]) / np.array(self.source_size[::-1])
        points = (keypoints + 0.5) * scales - 0.5  # source px -> resized px
        radius = ON_ANIMAL_RADIUS * max(self.letterbox.input_size)
        return on_foreground(resized, self.pipeline.background.gray, points, radius)
