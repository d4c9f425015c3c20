"""Choosing the compute device and its precision."""

from __future__ import annotations

import contextlib
from typing import TypeVar

import torch

from bkind_model.config import AUTO_IMAGE_SIZES, Config
from bkind_model.errors import ConfigError

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a config's ``device`` value.

    Parameters
    ----------
    name : str
        ``"auto"`` picks CUDA, then Apple's MPS, then the CPU; anything else is passed to
        :class:`torch.device` (``"cpu"``, ``"cuda:1"`` ...).

    Raises
    ------
    ConfigError
        When the requested device does not exist on this machine.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"Unknown device {name!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from exc
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"Unsupported device {name!r}: use 'auto', 'cpu', 'cuda' or 'mps'.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use 'auto'.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} requested but this machine has {torch.cuda.device_count()} "
            "CUDA GPU(s); use 'cuda' or 'auto'."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use 'auto'.")
    return device


def place_model(model: ModuleT, device: torch.device) -> ModuleT:
    """``model`` on ``device``; on CUDA in ``channels_last`` memory, which tensor cores like.

    The frames reach the model channels-last already (``(B, H, W, 3)`` pixels, permuted).
    """
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def available_memory_mb() -> float:
    """Memory the machine can still give this process, MiB (``MemAvailable``)."""
    try:
        for line in open("/proc/meminfo").read().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")  # unknown (not Linux): do not refuse


def training_memory_mb(config: Config) -> float:
    """A rough upper estimate of training memory beyond torch itself, MiB.

    Activations and gradients grow with the batch (two frames a pair, plus the rotated
    copy for equivariance) and the input area; the constant was measured with the small
    encoder (1.35 GB peak at batch 16, 96 px: ~850 MB above torch) and ResNets cost about
    4x per pixel more.

    Parameters
    ----------
    config : Config
        ``batch_size``, ``image_size``, ``encoder``, ``width``.
    """
    frames = config.batch_size * (3 if config.equivariance_weight > 0 else 2)
    per_pixel = 720 * (config.width / 32) * (1 if config.encoder == "small" else 4)
    side = config.image_size or AUTO_IMAGE_SIZES[1]  # the largest automatic size
    return frames * side**2 * per_pixel * 4 / 2**20


def check_memory(config: Config, device: torch.device) -> None:
    """Refuse a batch and input size whose training would not fit in memory.

    Raises
    ------
    ConfigError
        With the estimate, what is available, and the fix.
    """
    needed = training_memory_mb(config)
    if device.type == "cuda":
        available = torch.cuda.get_device_properties(device).total_memory / 2**20
    else:
        available = available_memory_mb()
    if needed > 0.9 * available:
        raise ConfigError(
            f"batch_size {config.batch_size} at image_size {config.image_size} needs about "
            f"{needed / 1024:.1f} GB but {available / 1024:.1f} GB are available on {device}; "
            "lower --batch or --image-size."
        )
