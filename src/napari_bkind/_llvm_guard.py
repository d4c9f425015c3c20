"""Load Triton's LLVM with its own symbols, inside napari on Linux.

napari draws with OpenGL. With Mesa's drivers (software rendering, AMD, no GPU at all)
the OpenGL library loads Mesa's copy of LLVM. Triton, which torch imports as soon as an
optimiser is created (``torch._dynamo``), carries another LLVM; loaded after Mesa's, its
symbols resolve to Mesa's and napari crashes with a segmentation fault. Loading Triton's
library with ``RTLD_DEEPBIND`` makes it use its own symbols.

An import hook does this when Triton is first imported, so a session that only views
results does not pay Triton's ~80 MB. Nothing happens off Linux or once Triton is loaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType

TRITON_LIBRARY = "triton._C.libtriton"


class _DeepBindLoader(importlib.abc.Loader):
    """Loads an extension module with ``RTLD_DEEPBIND`` added to the dlopen flags."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        try:
            return self.loader.create_module(spec)
        finally:
            sys.setdlopenflags(flags)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)


class _TritonFinder(importlib.abc.MetaPathFinder):
    """Finds Triton's library as the other finders do, with the deep-binding loader."""

    def find_spec(self, name, path, target=None):
        if name != TRITON_LIBRARY:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = _DeepBindLoader(spec.loader)
                return spec
        return None


def load_triton_apart() -> None:
    """From now on, load Triton's library with its own symbols (Linux; once per process)."""
    if not sys.platform.startswith("linux") or TRITON_LIBRARY in sys.modules:
        return
    if not any(isinstance(finder, _TritonFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TritonFinder())
