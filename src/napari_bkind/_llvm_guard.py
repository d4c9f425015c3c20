"""Load Triton's LLVM with its own symbols before torch needs it, inside napari on Linux.

napari draws with OpenGL. With Mesa's drivers (software rendering, AMD, no GPU at all)
the OpenGL library loads Mesa's copy of LLVM. Triton, which torch imports as soon as an
optimiser is created (``torch._dynamo``), carries another LLVM; loaded after Mesa's, its
symbols resolve to Mesa's and napari crashes with a segmentation fault. Loading Triton
with ``RTLD_DEEPBIND`` makes it use its own symbols. Nothing happens where Triton is not
installed, was already imported, or the platform is not Linux.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def load_triton_apart() -> None:
    """Import Triton with ``RTLD_DEEPBIND`` if it is installed and not imported yet."""
    if not sys.platform.startswith("linux") or "triton" in sys.modules:
        return
    if importlib.util.find_spec("triton") is None:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import triton  # noqa: F401
    except Exception:  # a broken Triton only matters to torch.compile, which we do not use
        pass
    finally:
        sys.setdlopenflags(flags)
