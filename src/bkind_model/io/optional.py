"""Optional dependencies, imported when first needed with a message saying how to get them."""

from __future__ import annotations

import importlib
from types import ModuleType

from bkind_model.errors import MissingDependencyError


def movement_io(module: str) -> ModuleType:
    """``movement.io.<module>``, or a :class:`MissingDependencyError` saying how to get it.

    movement writes the SLEAP, NWB and netCDF exports and holds poses as xarray datasets
    (the ``movement`` extra).
    """
    try:
        return importlib.import_module(f"movement.io.{module}")
    except ImportError as exc:
        raise MissingDependencyError(
            "SLEAP, NWB and netCDF exports and movement datasets need movement, which is not "
            "installed: pip install 'napari-bkind[movement]' (or export with --to dlc or "
            "--to csv)."
        ) from exc
