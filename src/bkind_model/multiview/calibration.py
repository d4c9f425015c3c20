"""anipose ``calibration.toml``: read, check and write the cameras of a session.

The file has one table per camera (``[cam_0]``, ``[cam_1]``, ...) with ``name``,
``size = [width, height]``, ``matrix`` (3x3 intrinsics), ``distortions`` (OpenCV's
``k1, k2, p1, p2, k3``), ``rotation`` (a Rodrigues vector, world to camera; a 3x3
rotation matrix, as some tools write it, is converted) and ``translation``; an optional
``[metadata]`` table is kept as it is. Pixels follow OpenCV: the centre of the top-left
pixel is ``(0, 0)``.

Reading checks what a wrong file would otherwise turn into silently wrong 3D: every
camera's intrinsics and rotation, unique names, no copied entries, at least two cameras,
and that every camera looks at the place the others look at (:func:`check_cameras`).
Each failure is a :class:`CalibrationError` naming the camera.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch

from bkind_model.errors import PathError
from bkind_model.io.atomic import atomic_path
from bkind_model.multiview.cameras import Camera, CameraRig, rodrigues_vector

#: A 3x3 ``rotation`` is accepted when ``R R^T`` is the identity and ``det R`` is 1 within this.
ROTATION_TOLERANCE = 1e-6

#: Pixels per side of the grid on which a camera's lens distortion is checked.
LENS_GRID = 17
#: Largest distance, px, at which a pixel may come back after undistorting and projecting.
LENS_ROUND_TRIP_PX = 0.1

#: How far outside its image (as a fraction of the image size, each side) a camera may
#: project the centre of attention (:func:`attention_centre`) and still count as looking at it.
VIEW_MARGIN = 0.5

_FIELDS = ("size", "matrix", "distortions", "rotation", "translation")
_FIX_ENTRY = "Fix that entry, or re-export the calibration."
_FIX_POSE = (
    "Check its rotation and translation: they map world to camera (x_cam = R X + t, "
    "OpenCV's and anipose's convention; a camera-to-world pose must be inverted), or "
    "re-export the calibration."
)


class CalibrationError(PathError):
    """A calibration file cannot be used: which camera, what is wrong, the fix."""


def read_calibration(path: str | Path) -> list[Camera]:
    """The cameras of an anipose ``calibration.toml``, in the file's order, checked.

    Parameters
    ----------
    path : str or Path
        The ``calibration.toml``. Every table except ``[metadata]`` is a camera.

    Returns
    -------
    list of Camera
        With ``rotation`` as a Rodrigues vector ``(3,)`` and five distortion coefficients
        (four in the file get ``k3 = 0``).

    Raises
    ------
    CalibrationError
        When the file is missing, is not TOML, a camera's entry is malformed, or the
        cameras fail :func:`check_cameras`; the message names the camera.
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
    except RecursionError as exc:  # arrays or tables nested thousands deep
        raise CalibrationError(
            path,
            "nests arrays or tables too deeply to be a calibration.",
            "Pass an anipose calibration.toml.",
        ) from exc
    tables = [(key, value) for key, value in document.items() if key != "metadata"]
    cameras = [_camera(path, key, value) for key, value in tables if isinstance(value, dict)]
    if not cameras:
        raise CalibrationError(
            path,
            "holds no camera tables ([cam_0], [cam_1], ...).",
            "Pass an anipose calibration.toml.",
        )
    check_cameras(cameras, path)
    return cameras


def _camera(path: Path, key: str, table: dict[str, Any]) -> Camera:
    """One camera table -> :class:`Camera` (shapes and numbers checked, rotation converted)."""
    name = str(table.get("name", key))
    missing = [f for f in _FIELDS if f not in table]
    if missing:
        raise CalibrationError(
            path, f"camera {name!r} has no {', '.join(missing)}.", "Add them (anipose's layout)."
        )
    fisheye = table.get("fisheye", False)
    if fisheye is not False:
        raise CalibrationError(
            path,
            f"camera {name!r} is calibrated as a fisheye lens (fisheye = "
            f"{'true' if fisheye is True else repr(fisheye)}); bkind "
            "models pinhole cameras with OpenCV's standard distortion (k1, k2, p1, p2, k3), "
            "and fisheye coefficients read that way would misplace every point.",
            "Calibrate this camera without the fisheye model (anipose: fisheye = false).",
        )

    def array(field: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        try:
            value = np.asarray(table[field], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                path, f"camera {name!r}: {field} is not numbers.", _FIX_ENTRY
            ) from exc
        if shape is not None and value.shape != shape:
            raise CalibrationError(
                path,
                f"camera {name!r}: {field} has shape {value.shape}; expected {shape}.",
                _FIX_ENTRY,
            )
        if not np.isfinite(value).all():
            raise CalibrationError(
                path,
                f"camera {name!r}: {field} has non-finite values ({value.tolist()}).",
                _FIX_ENTRY,
            )
        return value

    def three(field: str) -> np.ndarray:
        value = array(field)
        if value.shape not in ((3,), (3, 1), (1, 3)):
            raise CalibrationError(
                path,
                f"camera {name!r}: {field} has shape {value.shape}; expected 3 numbers.",
                _FIX_ENTRY,
            )
        return value.reshape(3)

    size = array("size", (2,))
    if (size != np.round(size)).any() or (size < 1).any():
        raise CalibrationError(
            path,
            f"size of camera {name!r} is {size.tolist()}; expected [width, height] in whole "
            "pixels, both positive.",
            _FIX_ENTRY,
        )

    rotation = array("rotation")
    if rotation.shape == (3, 3):
        rotation = _rotation_vector(path, name, rotation)
    elif rotation.shape in ((3,), (3, 1), (1, 3)):
        rotation = rotation.reshape(3)
    else:
        raise CalibrationError(
            path,
            f"rotation of camera {name!r} has shape {rotation.shape}; expected a Rodrigues "
            "vector (3 numbers, axis times angle in radians) or a 3x3 rotation matrix.",
            _FIX_ENTRY,
        )

    return Camera(
        name=name,
        size=(int(size[0]), int(size[1])),
        matrix=array("matrix", (3, 3)),
        distortions=_distortions(path, name, array("distortions").ravel()),
        rotation=rotation,
        translation=three("translation"),
    )


def _rotation_vector(path: Path, name: str, matrix: np.ndarray) -> np.ndarray:
    """Rodrigues vector ``(3,)`` of a 3x3 ``rotation`` entry, after checking it is a rotation."""
    det = float(np.linalg.det(matrix))
    off = float(np.abs(matrix @ matrix.T - np.eye(3)).max())
    if off > ROTATION_TOLERANCE or abs(det - 1) > ROTATION_TOLERANCE:
        raise CalibrationError(
            path,
            f"rotation of camera {name!r} is not a rotation (det {det:.6g}, R R^T off "
            f"identity by {off:.3g}; a rotation has det +1 and R R^T = I within "
            f"{ROTATION_TOLERANCE:g}).",
            "Write the world-to-camera rotation (a Rodrigues vector, or an orthonormal 3x3 "
            "matrix without reflection), or re-export the calibration.",
        )
    return rodrigues_vector(matrix)


def _distortions(path: Path, name: str, coefficients: np.ndarray) -> np.ndarray:
    """OpenCV coefficients (4, 5, 8, 12 or 14) -> ``(5,)`` ``k1, k2, p1, p2, k3``."""
    n = len(coefficients)
    if n not in (4, 5, 8, 12, 14):
        raise CalibrationError(
            path,
            f"camera {name!r}: {n} distortion coefficients.",
            "Give OpenCV's k1, k2, p1, p2[, k3].",
        )
    if n > 5 and (coefficients[5:] != 0).any():
        raise CalibrationError(
            path,
            f"camera {name!r} uses OpenCV's rational or thin-prism lens model ({n} "
            f"coefficients, those after k3 are {coefficients[5:].tolist()}); only "
            "k1, k2, p1, p2, k3 are supported.",
            "Calibrate with OpenCV's standard five-coefficient model (anipose's default).",
        )
    return np.concatenate([coefficients[:5], np.zeros(max(0, 5 - n))])


def check_camera(camera: Camera, path: str | Path) -> None:
    """Check one camera's name, image size, intrinsics and parameter shapes.

    Parameters
    ----------
    camera : Camera
        With ``size`` ``(width, height)`` in pixels, ``matrix`` ``(3, 3)``, ``distortions``
        ``(4,)`` or ``(5,)``, ``rotation`` a Rodrigues vector ``(3,)`` (radians) and
        ``translation`` ``(3,)`` (world units).
    path : str or Path
        The calibration the camera comes from (named in the error).

    Raises
    ------
    CalibrationError
        Naming the camera: an empty name, a size that is not two positive integers,
        ``fx`` or ``fy`` not positive, a last row other than ``[0, 0, 1]`` (or
        ``matrix[1, 0]`` non-zero), a principal point outside the image, or a parameter
        of the wrong shape or not finite.
    """
    name = camera.name
    if not isinstance(name, str) or not name:
        raise CalibrationError(
            path, f"a camera has the name {name!r}.", "Give every camera a non-empty name."
        )
    size = camera.size
    if (
        len(size) != 2
        or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise CalibrationError(
            path,
            f"size of camera {name!r} is {list(size)}; expected [width, height], two "
            "positive whole numbers of pixels.",
            _FIX_ENTRY,
        )
    shapes = {
        "matrix": ((3, 3),),
        "distortions": ((4,), (5,)),
        "rotation": ((3,),),
        "translation": ((3,),),
    }
    for field, allowed in shapes.items():
        value = np.asarray(getattr(camera, field))
        if value.shape not in allowed:
            hint = "; convert a 3x3 rotation with rodrigues_vector" if field == "rotation" else ""
            raise CalibrationError(
                path,
                f"{field} of camera {name!r} has shape {value.shape}; expected "
                f"{' or '.join(map(str, allowed))}{hint}.",
                _FIX_ENTRY,
            )
        if not np.isfinite(value.astype(np.float64)).all():
            raise CalibrationError(
                path, f"{field} of camera {name!r} has non-finite values.", _FIX_ENTRY
            )

    m = np.asarray(camera.matrix, np.float64)
    width, height = int(size[0]), int(size[1])
    if m[0, 0] <= 0 or m[1, 1] <= 0:
        raise CalibrationError(
            path,
            f"matrix of camera {name!r} has focal lengths fx = {m[0, 0]:g}, fy = "
            f"{m[1, 1]:g} px; both must be positive.",
            _FIX_ENTRY,
        )
    if np.abs(m[2] - [0, 0, 1]).max() > 1e-9 or abs(m[1, 0]) > 1e-9:
        raise CalibrationError(
            path,
            f"matrix of camera {name!r} is not an intrinsic matrix [[fx, s, cx], [0, fy, "
            f"cy], [0, 0, 1]] (last row {m[2].tolist()}, matrix[1][0] = {m[1, 0]:g}).",
            "Write the camera's 3x3 intrinsic matrix (not a projection matrix), or "
            "re-export the calibration.",
        )
    cx, cy = float(m[0, 2]), float(m[1, 2])
    if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
        raise CalibrationError(
            path,
            f"matrix of camera {name!r} puts the principal point at ({cx:g}, {cy:g}) px, "
            f"outside its {width}x{height} image.",
            "Check that size is [width, height] of this camera's images and that the "
            "matrix belongs to this camera, or re-export the calibration.",
        )
    _check_lens(camera, path)


def _check_lens(camera: Camera, path: str | Path) -> None:
    """The lens distortion maps the image one to one and is inverted within tolerance.

    The radial curve ``r (1 + k1 r^2 + k2 r^4 + k3 r^6)`` (``r`` in focal lengths) must
    rise until it reaches the image's farthest corner, else the lens would fold the image
    (two directions meeting in one pixel); and on a grid of :data:`LENS_GRID` x
    :data:`LENS_GRID` pixels spanning the image (corners included), every pixel undistorted
    (:meth:`CameraRig.undistort`, as triangulation does) and projected back must return
    within :data:`LENS_ROUND_TRIP_PX`.
    """
    width, height = camera.size
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                        [width - 0.5, height - 0.5]])  # fmt: skip
    rig = CameraRig([camera])
    distorted = rig.from_pixels(torch.as_tensor(corners[:, None])).numpy()  # (4, 1, 2)
    reach = float(np.linalg.norm(distorted, axis=-1).max())  # radius of the farthest corner
    k1, k2, _, _, k3 = np.asarray(rig.distortions[0])
    coefficients = np.asarray(camera.distortions, np.float64).tolist()
    fix = (
        "Check the distortions entry (OpenCV's k1, k2, p1, p2, k3 of this camera), or "
        "re-calibrate."
    )
    with np.errstate(all="ignore"):
        r = np.linspace(0.0, 4 * reach, 4000)
        curve = r * (1 + k1 * r**2 + k2 * r**4 + k3 * r**6)
        slope = 1 + 3 * k1 * r**2 + 5 * k2 * r**4 + 7 * k3 * r**6
    inside = r <= r[int(np.argmax(curve >= reach))] if (curve >= reach).any() else r >= 0
    if not (slope[inside] > 0).all():
        where = float(r[int(np.argmax(inside & (slope <= 0)))])
        raise CalibrationError(
            path,
            f"camera {camera.name!r}: the lens distortion {coefficients} folds the image "
            f"(its radial curve turns back {where:.3g} focal lengths from the centre, inside "
            "the image): no lens does that.",
            fix,
        )
    xs = np.linspace(-0.5, width - 0.5, LENS_GRID)
    ys = np.linspace(-0.5, height - 0.5, LENS_GRID)
    pixels = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 1, 2)  # (N, 1, 2)
    with np.errstate(all="ignore"):
        normalised = rig.undistort(torch.as_tensor(pixels))
        back = rig.to_pixels(rig.distort(normalised)).numpy()
        off = np.linalg.norm(back - pixels, axis=-1)[:, 0]  # (N,)
    worst = int(np.argmax(np.where(np.isfinite(off), off, np.inf)))
    if not off[worst] <= LENS_ROUND_TRIP_PX:
        x, y = pixels[worst, 0]
        raise CalibrationError(
            path,
            f"camera {camera.name!r}: the lens distortion {coefficients} cannot be undone "
            f"over its {width}x{height} image (pixel ({x:.0f}, {y:.0f}) comes back "
            f"{off[worst]:.3g} px off after undistorting and projecting, more than "
            f"{LENS_ROUND_TRIP_PX:g}).",
            fix,
        )


def check_cameras(cameras: Sequence[Camera], path: str | Path) -> None:
    """Check a session's cameras, each one and all together.

    Every camera passes :func:`check_camera`; there are at least two; their names are
    unique; no two have identical parameters (an entry copied over another); and every
    camera looks at the centre of attention (:func:`attention_centre`, the point the
    optical axes pass closest to): the point is in front of it (positive depth) and its
    pinhole projection lies inside the image or within :data:`VIEW_MARGIN` of the image
    size beyond an edge. The projection is without lens distortion: the distortion
    polynomial holds only inside the field of view and folds points far outside it back in.

    Parameters
    ----------
    cameras : sequence of Camera
        The cameras of one session.
    path : str or Path
        The calibration they come from (named in the error).

    Raises
    ------
    CalibrationError
        The first failure found; its message names the camera(s).
    """
    for camera in cameras:
        check_camera(camera, path)
    if len(cameras) < 2:
        only = f" ({cameras[0].name!r})" if cameras else ""
        raise CalibrationError(
            path,
            f"holds {len(cameras)} camera{only}; 3D needs at least two calibrated cameras.",
            "Pass the calibration of all the session's cameras.",
        )
    names = [c.name for c in cameras]
    for name in dict.fromkeys(names):
        positions = [str(i) for i, n in enumerate(names) if n == name]
        if len(positions) > 1:
            raise CalibrationError(
                path,
                f"camera name {name!r} is used {len(positions)} times (cameras "
                f"{', '.join(positions)} in file order); videos are matched to cameras by name.",
                "Give every camera its own name.",
            )
    for i, first in enumerate(cameras):
        for second in cameras[i + 1 :]:
            if first.same_parameters(second):
                raise CalibrationError(
                    path,
                    f"cameras {first.name!r} and {second.name!r} have identical intrinsics "
                    "and pose: one entry was copied over the other.",
                    "Re-export the calibration (e.g. anipose calibrate) so that each camera "
                    "has its own parameters.",
                )
    _check_attention(cameras, Path(path))


def attention_centre(cameras: Sequence[Camera]) -> np.ndarray:
    """The point ``(3,)`` (world units) the cameras' optical axes pass closest to.

    The least-squares point of the axes (lines through each optical centre along its
    viewing direction). When the axes are (nearly) parallel, within about 10 degrees, that
    point is undetermined along them; it is then taken in front of every camera if there
    is such a point (between cameras facing each other; far ahead, a hundred times the
    spread of the cameras, for cameras looking the same way).

    Parameters
    ----------
    cameras : sequence of Camera
        At least two.

    Returns
    -------
    ndarray
        ``(3,)`` world coordinates.
    """
    centres = np.stack([c.centre for c in cameras])  # (V, 3)
    axes = np.stack([c.rotation_matrix[2] for c in cameras])  # (V, 3) unit viewing directions
    projectors = np.eye(3) - axes[:, :, None] * axes[:, None, :]  # (V, 3, 3)
    normal = projectors.sum(0)
    rhs = np.einsum("vij,vj->i", projectors, centres)
    values, vectors = np.linalg.eigh(normal)  # ascending
    if values[0] > 1e-2 * values[-1]:
        return np.linalg.solve(normal, rhs)
    # The axes are nearly parallel: solve across them, then choose the point along them.
    along = vectors[:, 0]
    if (axes @ along).sum() < 0:
        along = -along
    start = vectors[:, 1:] @ ((vectors[:, 1:].T @ rhs) / values[1:])
    depth0 = np.einsum("vi,vi->v", start - centres, axes)  # depth at s = 0
    rate = axes @ along  # depth gained per unit of s
    ahead, facing = rate > 1e-9, rate < -1e-9
    lower = float((-depth0[ahead] / rate[ahead]).max()) if ahead.any() else -np.inf
    upper = float((-depth0[facing] / rate[facing]).min()) if facing.any() else np.inf
    spread = max(float(np.linalg.norm(centres - centres.mean(0), axis=1).max()), 1.0)
    if np.isinf(upper):
        s = (lower if np.isfinite(lower) else 0.0) + 100 * spread
    elif np.isinf(lower):
        s = upper - 100 * spread
    else:
        s = (lower + upper) / 2
    return start + s * along


def _check_attention(cameras: Sequence[Camera], path: Path) -> None:
    """Every camera sees :func:`attention_centre` in front, inside its image (with margin)."""
    point = attention_centre(cameras)
    failures = []
    for camera in cameras:
        x, y, z = camera.rotation_matrix @ point + np.asarray(camera.translation, np.float64)
        width, height = camera.size
        where = f"({point[0]:.4g}, {point[1]:.4g}, {point[2]:.4g})"
        if not z > 0:
            failures.append(
                f"camera {camera.name!r} looks away from the arena: the point the cameras' "
                f"optical axes pass closest to, {where}, is behind it (depth {z:.4g})"
            )
            continue
        m = np.asarray(camera.matrix, np.float64)
        u = m[0, 0] * x / z + m[0, 1] * y / z + m[0, 2]
        v = m[1, 1] * y / z + m[1, 2]
        inside_u = -0.5 - VIEW_MARGIN * width <= u <= width - 0.5 + VIEW_MARGIN * width
        inside_v = -0.5 - VIEW_MARGIN * height <= v <= height - 0.5 + VIEW_MARGIN * height
        if not (inside_u and inside_v):
            failures.append(
                f"camera {camera.name!r} looks away from the arena: the point the cameras' "
                f"optical axes pass closest to, {where}, projects to ({u:.4g}, {v:.4g}) px, "
                f"more than half the image size outside its {width}x{height} image"
            )
    if failures:
        raise CalibrationError(path, "; ".join(failures) + ".", _FIX_POSE)


def write_calibration(
    path: str | Path, cameras: Sequence[Camera], metadata: dict[str, Any] | None = None
) -> Path:
    """Write cameras as an anipose ``calibration.toml`` (atomically).

    :func:`read_calibration` gives the same cameras back, every number bit for bit.

    Parameters
    ----------
    path : str or Path
        Output file.
    cameras : sequence of Camera
        In the order of ``cam_0``, ``cam_1``, ...
    metadata : dict, optional
        Written as the ``[metadata]`` table.

    Returns
    -------
    Path
        ``path``.
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
