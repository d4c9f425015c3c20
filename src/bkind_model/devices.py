"""Choosing the compute device and its precision."""

from __future__ import annotations

import contextlib

import torch

from bkind_model.errors import ConfigError


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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use 'auto'.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use 'auto'.")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
