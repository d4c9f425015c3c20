"""bkind_model: discover an animal's keypoints in videos without labels (B-KinD).

The headless engine of napari-bkind. It never imports Qt or napari.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-bkind")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
