"""anipose ``calibration.toml``: read, check and write the cameras of a session.

The file has one table per camera (``[cam_0]``, ``[cam_1]``, ...) with ``name``,
``size = [width, height]``, ``matrix`` (3x3 intrinsics), ``distortions`` (OpenCV's
``k1, k2, p1, p2, k3``), ``rotation`` (a Rodrigues vector, world to camera) and
``translation``; an optional ``[metadata]`` table is kept as it is. Pixels follow OpenCV:
the centre of the top-left pixel is ``(0, 0)``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from bkind_model.errors import PathError
from bkind_model.io.atomic import atomic_path
from bkind_model.multiview.cameras import Camera


class CalibrationError(PathError):
    """A calibration file cannot be used: which camera, what is wrong, the fix."""


def read_calibration(path: str | Path) -> list[Camera]:
    """The cameras of an anipose ``calibration.toml``, in the file's order.

    Raises
    ------
    CalibrationError
        When the file is missing, is not TOML, or a camera's entry is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(
            path, "calibration file not found.", "Pass the calibration.toml of this session."
        )
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(
            path, f"not a TOML file ({exc}).", "Pass an anipose calibration.toml."
        ) from exc
    tables = [(key, value) for key, value in document.items() if key != "metadata"]
    cameras = [_camera(path, key, value) for key, value in tables if isinstance(value, dict)]
    if not cameras:
        raise CalibrationError(
            path,
            "holds no camera tables ([cam_0], [cam_1], ...).",
            "Pass an anipose calibration.toml.",
        )
    return cameras


def _camera(path: Path, key: str, table: dict[str, Any]) -> Camera:
    name = str(table.get("name", key))
    missing = [
        f for f in ("size", "matrix", "distortions", "rotation", "translation") if f not in table
    ]
    if missing:
        raise CalibrationError(
            path, f"camera {name!r} has no {', '.join(missing)}.", "Add them (anipose's layout)."
        )

    def array(field: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        try:
            value = np.asarray(table[field], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                path, f"camera {name!r}: {field} is not numbers.", "Fix that entry."
            ) from exc
        if (shape is not None and value.shape != shape) or not np.isfinite(value).all():
            raise CalibrationError(
                path,
                f"camera {name!r}: {field} has shape {value.shape} or non-finite values"
                + (f"; expected {shape}." if shape else "."),
                "Fix that entry.",
            )
        return value

    size = array("size", (2,))
    distortions = array("distortions").ravel()
    if len(distortions) not in (4, 5, 8):
        raise CalibrationError(
            path,
            f"camera {name!r}: {len(distortions)} distortion coefficients.",
            "Give OpenCV's k1, k2, p1, p2[, k3].",
        )
    return Camera(
        name=name,
        size=(int(size[0]), int(size[1])),
        matrix=array("matrix", (3, 3)),
        distortions=np.resize(distortions, 5) if len(distortions) == 4 else distortions[:5],
        rotation=array("rotation"),
        translation=array("translation", (3,)),
    )


def write_calibration(
    path: str | Path, cameras: Sequence[Camera], metadata: dict[str, Any] | None = None
) -> Path:
    """Write cameras as an anipose ``calibration.toml`` (atomically).

    Parameters
    ----------
    path : str or Path
        Output file.
    cameras : sequence of Camera
        In the order of ``cam_0``, ``cam_1``, ...
    metadata : dict, optional
        Written as the ``[metadata]`` table.
    """
    document: dict[str, Any] = {}
    for i, camera in enumerate(cameras):
        document[f"cam_{i}"] = {
            "name": camera.name,
            "size": [int(camera.size[0]), int(camera.size[1])],
            "matrix": np.asarray(camera.matrix, np.float64).tolist(),
            "distortions": np.asarray(camera.distortions, np.float64).tolist(),
            "rotation": np.asarray(camera.rotation, np.float64).ravel().tolist(),
            "translation": np.asarray(camera.translation, np.float64).tolist(),
        }
    if metadata:
        document["metadata"] = metadata
    path = Path(path)
    with atomic_path(path, suffix=".toml") as tmp:
        tmp.write_text(tomli_w.dumps(document))
    return path
