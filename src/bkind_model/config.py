"""The one typed configuration of a discovery run.

It is saved inside every checkpoint and every results file, so any file tells how it was
made. Everything a run depends on is here; nothing is read from elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from bkind_model.errors import ConfigError
from bkind_model.jsonfile import loads_json

ENCODERS = ("small", "efficientnet-lite0", "resnet18", "resnet34", "resnet50")
RECONSTRUCTION_LOSSES = ("mse", "ssim", "random_features", "perceptual")
GapUnit = Literal["frames", "seconds"]
MaskMethod = Literal["background", "colour"]
MaskUse = Literal["fill", "black", "target"]


@dataclass
class MaskSettings:
    """How shadows and static clutter are found and what training does with them.

    Attributes
    ----------
    method : {"background", "colour"}
        Background model (shadows found as darker floor) or HSV colour range (the animal).
    use : {"fill", "black", "target"}
        Ignored pixels are replaced by the background, set to black, or only removed from
        the reconstruction target.
    hue : tuple of float
        ``(low, high)`` hue of the animal, degrees; ``low > high`` wraps through 0 (reds).
    saturation, value : tuple of float
        ``(low, high)`` saturation and value (brightness) of the animal, in [0, 1].
    change : float
        Mean absolute RGB difference from the background (fraction of 255) above which a
        pixel changed (background method).
    shadow_ratio : tuple of float
        ``(low, high)`` brightness of shadow relative to the background.
    shadow_chroma : float
        Largest change of chromaticity (r, g, b divided by their sum) of shadow pixels.
    cleanup_px : int
        Radius of the morphological opening that removes specks, pixels of the frames
        masked (0: none); holes in the animal are always filled.
    static_mask : str or None
        An image file (``.npy`` or ``.png``) of the video's size, nonzero where pixels are
        ignored on every frame.
    animal_prior : float
        Weight of a loss on the share of each keypoint's heatmap lying off the animal
        (0: none): keypoints that explain nothing are drawn onto the animal rather than
        left beside it (on its shadow, say). With it no keypoint lands on shadows, but
        the keypoints predict the pose less well (bench/README.md); 0 keeps them freer.
    """

    method: MaskMethod = "background"
    use: MaskUse = "fill"
    hue: tuple[float, float] = (0.0, 360.0)
    saturation: tuple[float, float] = (0.0, 1.0)
    value: tuple[float, float] = (0.0, 0.35)
    change: float = 0.1
    shadow_ratio: tuple[float, float] = (0.55, 0.95)
    shadow_chroma: float = 0.04
    cleanup_px: int = 1
    static_mask: str | None = None
    animal_prior: float = 0.01

    def __post_init__(self) -> None:
        for name in ("hue", "saturation", "value", "shadow_ratio"):
            setattr(self, name, _pair(getattr(self, name), f"mask setting {name}"))
        for name in ("change", "shadow_chroma", "animal_prior"):
            _number(getattr(self, name), f"mask setting {name}")
        _number(self.cleanup_px, "mask setting cleanup_px", integer=True)
        if self.static_mask is not None and not isinstance(self.static_mask, str):
            raise ConfigError("Invalid mask settings: static_mask must be a file path.")
        checks = [
            (self.method in ("background", "colour"), "method must be 'background' or 'colour'"),
            (self.use in ("fill", "black", "target"), "use must be 'fill', 'black' or 'target'"),
            (all(0 <= v <= 360 for v in self.hue), "hue limits must be within 0-360 degrees"),
            (_ordered(self.saturation), "saturation must be (low, high) within 0-1"),
            (_ordered(self.value), "value must be (low, high) within 0-1"),
            (_ordered(self.shadow_ratio), "shadow_ratio must be (low, high) within 0-1"),
            (0 < self.change < 1, "change must be between 0 and 1"),
            (0 <= self.shadow_chroma < 1, "shadow_chroma must be between 0 and 1"),
            (0 <= self.cleanup_px <= 50, "cleanup_px must be a whole number of pixels, 0-50"),
            (0 <= self.animal_prior <= 100, "animal_prior must be between 0 and 100"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid mask settings: {message}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of JSON types."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MaskSettings:
        """Rebuild settings; unknown keys are an error."""
        _refuse_unknown(cls, values, "mask settings")
        return cls(**values)


#: The starting weights and frozen levels an encoder gets when it is chosen without them.
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "efficientnet-lite0": {"pretrained": "imagenet", "frozen_levels": 4},
}


def with_changes(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Config values ``values`` updated by ``changes``, keeping the encoder settings whole.

    :meth:`Config.replace`, the command line and the Train widget change configs with it.
    A change of ``encoder`` brings that encoder's own ``pretrained`` and ``frozen_levels``
    (:data:`ENCODER_DEFAULTS`; none and 0 for the others) unless ``changes`` names them:
    ``{"encoder": "small"}`` does not keep the ImageNet weights of another encoder.
    """
    encoder = changes.get("encoder")
    if encoder is None or encoder == values.get("encoder"):
        return values | changes
    return values | encoder_settings(encoder) | changes


def encoder_settings(encoder: str) -> dict[str, Any]:
    """``pretrained`` and ``frozen_levels`` of ``encoder`` when they are not given.

    Those of :data:`ENCODER_DEFAULTS`; none and 0 for the other encoders.
    """
    return ENCODER_DEFAULTS.get(encoder, {"pretrained": None, "frozen_levels": 0})


def _refuse_unknown(cls: type, values: dict[str, Any], what: str) -> None:
    """Raise ConfigError naming the keys of ``values`` that are not fields of ``cls``."""
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"Unknown {what}: {sorted(unknown)}.")


def _number(value: Any, what: str, integer: bool = False) -> float:
    """``value`` as a finite number (a whole one with ``integer``), else ConfigError."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Invalid {what}: must be {kind}, got {value!r}.")
    if not math.isfinite(value) or (integer and value != int(value)):
        raise ConfigError(f"Invalid {what}: must be {kind}, got {value!r}.")
    return float(value)


def json_object(text: str | None, option: str, example: str) -> dict[str, Any]:
    """The JSON object a setting's text holds (``{}`` when empty), else one clear error.

    Parsed by :func:`bkind_model.jsonfile.loads_json` (nesting and size limits).

    For the command line's JSON options and the widgets' *More settings* boxes.

    Parameters
    ----------
    text : str or None
        The text given.
    option : str
        Where it was given, for the message (``"--mask-settings"``, ``"More settings"``).
    example : str
        A valid value, shown in the message.
    """
    try:
        values = loads_json(text or "{}", source=option)
    except ConfigError as exc:
        raise ConfigError(f"{exc} E.g. '{example}'.") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{option} must be a JSON object, e.g. '{example}'.")
    return values


def _pair(value: Any, what: str) -> tuple[float, float]:
    """``value`` as a ``(low, high)`` pair of numbers, else ConfigError."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"Invalid {what}: must be a pair [low, high], got {value!r}.")
    low, high = (_number(v, what) for v in value)
    return (low, high)


def _ordered(pair: tuple[float, float]) -> bool:
    low, high = pair
    return 0 <= low <= high <= 1


#: Source pixels per input pixel the automatic input size aims at (a mouse's paw of
#: ~10 px stays ~4 input px wide), within :data:`AUTO_IMAGE_SIZES`.
SOURCE_PX_PER_INPUT_PX = 2.4
#: Smallest and largest automatic input side, px: the fast synthetic default, and the
#: most that trains enough steps in the default time budget on two CPU cores.
AUTO_IMAGE_SIZES = (96, 128)
#: Minutes a `bkind train` (and the Train widget) trains for when no length is given.
DEFAULT_MINUTES = 12.0
#: Frames of one dask task when many videos are extracted (about a minute at 30 fps).
TASK_FRAMES = 2000
#: Named training lengths: ``standard`` (the default budget) and ``quick`` (the 300 steps
#: the demo and tests use: ~2 min for the synthetic sample, not enough for real videos).
PRESETS: dict[str, dict[str, Any]] = {
    "standard": {"minutes": DEFAULT_MINUTES},
    "quick": {"steps": 300, "minutes": None},
}


@dataclass
class Config:
    """Settings of a keypoint-discovery run.

    Attributes
    ----------
    n_keypoints : int
        Number of keypoints to discover (K).
    image_size : int or None
        Side of the model input in pixels: the square crop that follows the animal, or
        the long side of the whole frame (aspect ratio kept, padded to a multiple of 16)
        when ``crop_size`` is 0. None chooses it from the window's size in source pixels
        (:func:`bkind_model.frames.pipeline.auto_image_size`: 96 to 128).
    crop_size : float or None
        Side in source pixels of the square window that follows the animal; None
        measures the animal in the video; 0 shows the whole frame instead.
    crop_jitter : int
        Random shift of training windows, input pixels (the window never sits exactly on
        the animal's centre, so the model does not learn to rely on it).
    frame_gap : float or None
        Gap between the two frames of a training pair, in ``gap_unit``; None asks
        :func:`bkind_model.frames.gap.suggest_frame_gap` for one.
    gap_unit : {"frames", "seconds"}
        Unit of ``frame_gap``.
    steps : int
        Optimiser steps to train. With ``minutes`` set this is replaced, once the first
        steps have been timed, by the steps that fit into the budget.
    minutes : float or None
        Time budget of training, minutes of wall-clock time (frame preparation not
        counted): after :data:`~bkind_model.train.loop.PLAN_STEPS` timed steps, ``steps``
        is set to what the measured speed fits into the budget, and the learning-rate
        schedule spans those steps. None trains exactly ``steps`` steps.
    batch_size : int
        Frame pairs per step.
    lr : float
        Peak learning rate of Adam (cosine decay after a short warm-up).
    weight_decay : float
        Adam's decoupled weight decay (AdamW).
    encoder : str
        ``"efficientnet-lite0"`` (the default: ImageNet weights bundled with the package,
        every level frozen, so each window's features are computed once and a step
        trains only the keypoint head and the decoder), ``"small"`` (a small CNN learnt
        from scratch) or a torchvision ResNet.
    width : int
        Channels of the small encoder's first level (doubles per level); the other
        encoders ignore it.
    pretrained : str or None
        Where the encoder's starting weights come from: ``"imagenet"`` for
        ``efficientnet-lite0`` (the ImageNet weights bundled with the package); for the
        ResNets a torchvision state dict's path, or ``"torch-cache"`` to look in torch's hub
        cache. Never downloaded. None starts from random weights; ``"auto"`` (the
        default) is the encoder's own (:data:`ENCODER_DEFAULTS`: ``"imagenet"`` for
        ``efficientnet-lite0``, None for the others).
    frozen_levels : int
        Levels of the ``efficientnet-lite0`` encoder, from the input on (0-4, strides 4,
        8, 16, 32), whose pretrained weights are not trained; -1 (the default) is the
        encoder's own (4 for ``efficientnet-lite0``, 0 for the others).
    heatmap_scale : float
        Multiplier of the heatmap logits before the softmax (sharper heatmaps when larger).
    heatmap_stride : int
        Input pixels per heatmap pixel (2 or 4).
    reconstruction_loss : str
        ``"mse"``, ``"ssim"`` (multi-scale SSIM + MSE), ``"random_features"`` or
        ``"perceptual"`` (MSE + distances in ImageNet EfficientNet-Lite0's early layers).
    equivariance_weight : float
        Weight of the rotation-equivariance loss.
    separation_weight : float
        Weight of the separation loss.
    separation_sigma : float
        Length scale of the separation loss in normalised units.
    curriculum_steps : int
        Step at which equivariance and separation switch on.
    checkpoint_every : int
        Steps between checkpoints.
    checkpoint_minutes : float
        Minutes of training between checkpoints, whatever the step count (so a slow run
        never loses more than this).
    device : str
        ``"auto"`` (cuda > mps > cpu), or a torch device string.
    seed : int
        Seed of every random choice of the run.
    threads : int or None
        CPU threads for torch; None uses all cores.
    masks : MaskSettings or None
        Shadow and static masks applied to the frames (:mod:`bkind_model.frames.masks`); None
        trains on the frames as they are.
    """

    n_keypoints: int = 10
    image_size: int | None = None
    crop_size: float | None = None
    crop_jitter: int = 4
    frame_gap: float | None = None
    gap_unit: GapUnit = "frames"
    steps: int = 300
    minutes: float | None = None
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    encoder: str = "efficientnet-lite0"
    width: int = 32
    pretrained: str | None = "auto"
    frozen_levels: int = -1
    heatmap_scale: float = 10.0
    heatmap_stride: int = 4
    reconstruction_loss: str = "mse"
    equivariance_weight: float = 0.0
    separation_weight: float = 0.0
    separation_sigma: float = 0.08
    curriculum_steps: int = 400
    checkpoint_every: int = 200
    checkpoint_minutes: float = 5.0
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    masks: MaskSettings | None = None

    def __post_init__(self) -> None:
        if self.encoder in ENCODERS:  # "auto" and -1: the encoder's own (an error otherwise)
            own = encoder_settings(self.encoder)
            if self.pretrained == "auto":
                self.pretrained = own["pretrained"]
            if self.frozen_levels == -1:
                self.frozen_levels = own["frozen_levels"]
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a value no run can use, naming the valid range."""
        if self.encoder not in ENCODERS:
            raise ConfigError(f"Invalid config: encoder must be one of {ENCODERS}.")
        integers = {
            "n_keypoints": (1, 100),
            "crop_jitter": (0, 64),
            "steps": (1, 10**9),
            "batch_size": (1, 4096),
            "width": (4, 512),
            "frozen_levels": (0, 4),
            "heatmap_stride": (2, 4),
            "curriculum_steps": (0, 10**9),
            "checkpoint_every": (1, 10**9),
            "seed": (-(2**63), 2**63 - 1),
        }
        for name, (low, high) in integers.items():
            value = _number(getattr(self, name), f"config: {name}", integer=True)
            if not low <= value <= high:
                raise ConfigError(
                    f"Invalid config: {name} must be between {low} and {high}, got "
                    f"{getattr(self, name)!r}."
                )
        positive = ("lr", "heatmap_scale", "separation_sigma", "checkpoint_minutes")
        for name in positive:
            if _number(getattr(self, name), f"config: {name}") <= 0:
                raise ConfigError(f"Invalid config: {name} must be positive.")
        for name in ("weight_decay", "equivariance_weight", "separation_weight"):
            if _number(getattr(self, name), f"config: {name}") < 0:
                raise ConfigError(f"Invalid config: {name} must be >= 0.")
        if self.image_size is not None:
            size = _number(self.image_size, "config: image_size", integer=True)
            if not 32 <= size <= 1024:
                raise ConfigError(
                    f"Invalid config: image_size must be between 32 and 1024, got "
                    f"{self.image_size!r}."
                )
        if self.minutes is not None:
            minutes = _number(self.minutes, "config: minutes")
            if not 0.1 <= minutes <= 7 * 24 * 60:
                raise ConfigError(
                    "Invalid config: minutes (the time budget) must be between 0.1 and "
                    f"10080 (a week), got {self.minutes!r}."
                )
        if self.threads is not None:
            threads = _number(self.threads, "config: threads", integer=True)
            if not 1 <= threads <= 1024:
                raise ConfigError("Invalid config: threads must be between 1 and 1024.")
        if self.crop_size is not None and _number(self.crop_size, "config: crop_size") < 0:
            raise ConfigError("Invalid config: crop_size must be >= 0 (0: the whole frame).")
        if self.frame_gap is not None and _number(self.frame_gap, "config: frame_gap") <= 0:
            raise ConfigError("Invalid config: frame_gap must be a positive number.")
        if self.frame_gap is not None and self.gap_unit == "frames" and self.frame_gap > 10**6:
            raise ConfigError("Invalid config: frame_gap must be at most 1000000 frames.")
        if self.pretrained is not None:
            if self.encoder == "small":
                raise ConfigError(
                    "Invalid config: pretrained weights are for the EfficientNet and ResNet "
                    "encoders; choose one (encoder efficientnet-lite0, resnet18, resnet34 or "
                    "resnet50) or leave pretrained unset."
                )
            if (self.encoder == "efficientnet-lite0") != (self.pretrained == "imagenet"):
                raise ConfigError(
                    "Invalid config: pretrained 'imagenet' (the weights bundled with the "
                    "package) is for encoder efficientnet-lite0, which takes no other file; "
                    "the ResNets take a torchvision weights file or 'torch-cache'."
                )
        if self.frozen_levels and self.encoder != "efficientnet-lite0":
            raise ConfigError(
                "Invalid config: frozen_levels is for the pretrained encoder "
                "efficientnet-lite0; set it to 0."
            )
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError("Invalid config: device must be 'auto', 'cpu', 'cuda' or 'mps'.")
        checks = [
            (
                self.image_size is None
                or self.image_size % (8 if self.encoder == "small" else 32) == 0,
                "image_size must be a multiple of 8 (32 for ResNet encoders)",
            ),
            (
                self.reconstruction_loss in RECONSTRUCTION_LOSSES,
                f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}",
            ),
            (self.gap_unit in ("frames", "seconds"), "gap_unit must be 'frames' or 'seconds'"),
            (self.heatmap_stride in (2, 4), "heatmap_stride must be 2 or 4"),
            (
                self.masks is None or isinstance(self.masks, MaskSettings),
                "masks must be mask settings",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid config: {message}.")

    @property
    def input_multiple(self) -> int:
        """Model input sides must be multiples of this (the encoder's total stride)."""
        return 8 if self.encoder == "small" else 32

    def gap_frames(self, fps: float) -> int:
        """The frame gap in frames for a video of ``fps`` frames per second."""
        if self.frame_gap is None:
            raise ConfigError("frame_gap is not set: call suggest_frame_gap first.")
        gap = self.frame_gap * fps if self.gap_unit == "seconds" else self.frame_gap
        return max(1, round(gap))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of JSON types (saved in checkpoints and results)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Rebuild a config; unknown keys are an error so typos do not pass silently.

        Encoder settings left out are the named encoder's own (:data:`ENCODER_DEFAULTS`),
        so a file written before they existed reads as it was trained.
        """
        _refuse_unknown(cls, values, "config keys")
        masks = values.get("masks")
        if isinstance(masks, dict):
            values = values | {"masks": MaskSettings.from_dict(masks)}
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """A copy with some values changed (validated); see :func:`with_changes`."""
        return Config.from_dict(with_changes(self.to_dict(), changes))

    def architecture(self) -> dict[str, Any]:
        """The values that decide the shapes of the model's weights.

        Two runs can share a checkpoint only when these agree.
        """
        keys = ("n_keypoints", "encoder", "width", "heatmap_stride")
        return {key: getattr(self, key) for key in keys}
