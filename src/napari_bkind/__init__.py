"""napari-bkind: the napari plugin of B-KinD keypoint discovery.

It converts and displays; all computing lives in :mod:`bkind_model`.
"""

from bkind_model import __version__
from napari_bkind._llvm_guard import load_triton_apart

# napari imports this package when a contribution is first used, after its OpenGL
# context exists: from now on Triton (imported by torch) loads safely.
load_triton_apart()

__all__ = ["__version__"]
