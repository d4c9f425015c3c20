"""napari-bkind: the napari plugin of B-KinD keypoint discovery.

It converts and displays; all computing lives in :mod:`bkind_model`.
"""

from bkind_model import __version__

__all__ = ["__version__"]
