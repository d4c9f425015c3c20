"""A folder of images read as one video (a :class:`~bkind_model.io.video.FrameReader`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from natsort import natsorted
from PIL import Image, UnidentifiedImageError

from bkind_model.errors import EmptyVideoError, InconsistentFramesError, NotAVideoError
from bkind_model.io.ffmpeg import check_readable

#: File name suffixes (lower case) read as images.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
#: Frame rate assumed for a folder when none is given.
DEFAULT_FPS = 30.0


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order (``img2`` before ``img10``).

    Hidden files and other suffixes than :data:`IMAGE_SUFFIXES` are ignored.
    """
    images = [
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    ]
    return natsorted(images, key=lambda path: path.name)


class ImageFolderReader:
    """Frames from the images of a folder, in natural order.

    Images are decoded with Pillow when read. Grayscale and palette images give three
    equal channels, alpha is dropped, 16-bit images are scaled to 8 bits.

    Parameters
    ----------
    folder : Path
        Folder of images, all the same size.
    fps : float, optional
        Frame rate to report; :data:`DEFAULT_FPS` (flagged ``fps_assumed``) when None.

    Raises
    ------
    EmptyVideoError
        The folder holds no images.
    InconsistentFramesError
        An image differs in size from the first one (the error names it).
    NotAVideoError
        A file with an image suffix cannot be read as an image.
    VideoPermissionError
        An image cannot be read with the current permissions.
    """

    def __init__(self, folder: Path, *, fps: float | None = None) -> None:
        self.path = folder
        self.files = list_images(folder)
        if not self.files:
            raise EmptyVideoError(
                folder,
                f"the folder holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).",
                "Pick a folder of images or a video file.",
            )
        for file in self.files:
            check_readable(file)
        self.width, self.height = _image_size(self.files[0])
        for file in self.files[1:]:
            self._check_size(file, _image_size(file))
        self.n_frames = len(self.files)
        self.fps = float(fps) if fps is not None else DEFAULT_FPS
        self.fps_assumed = fps is None
        self.timestamps = np.arange(self.n_frames) / self.fps
        self.signature = _folder_signature(folder, self.files)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start`` to ``stop - 1`` as ``(n, H, W, 3)`` uint8 RGB."""
        frames = np.empty((stop - start, self.height, self.width, 3), np.uint8)
        for slot, file in enumerate(self.files[start:stop]):
            image = _load_rgb(file)
            self._check_size(file, (image.shape[1], image.shape[0]))
            frames[slot] = image
        return frames

    def iter_chunks(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """Images ``start`` to ``stop - 1`` in batches of ``chunk``."""
        for first in range(start, stop, chunk):
            yield first, self.read(first, min(first + chunk, stop))

    def close(self) -> None:
        """Nothing to release: images are opened only while read."""

    def _check_size(self, file: Path, size: tuple[int, int]) -> None:
        if size != (self.width, self.height):
            raise InconsistentFramesError(
                file,
                f"this image is {size[0]}x{size[1]} pixels but {self.files[0].name} is "
                f"{self.width}x{self.height}; all images of a folder must share one size.",
                "Resize or remove the odd images, or put them in a folder of their own.",
            )


def _image_size(file: Path) -> tuple[int, int]:
    """``(width, height)`` from the image header, without decoding the pixels."""
    try:
        with Image.open(file) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as error:
        raise _not_an_image(file, error) from None


def _load_rgb(file: Path) -> np.ndarray:
    """Decode an image as ``(H, W, 3)`` uint8 RGB."""
    try:
        with Image.open(file) as image:
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                gray = np.asarray(image, dtype=np.float64)
                if image.mode != "F":
                    gray = gray / 256  # 16-bit range to 8 bits
                gray = np.clip(gray, 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise _not_an_image(file, error) from None


def _not_an_image(file: Path, error: Exception) -> NotAVideoError:
    return NotAVideoError(
        file,
        f"this file cannot be read as an image ({error}).",
        "Remove it from the folder or replace it with a valid image.",
    )


def _folder_signature(folder: Path, files: list[Path]) -> str:
    """Digest of the folder's resolved path and every image's name, size and mtime."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"|{file.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]
