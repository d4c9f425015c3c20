"""Results files: discovered keypoints of one video in HDF5, with how they were made.

Layout of ``<name>.h5`` (all coordinates in pixels of the original video, x right, y
down, origin at the centre of the top-left pixel):

========================  ==================  ===========================================
dataset                   shape               meaning
========================  ==================  ===========================================
``keypoints``             (T, K, 2) float32   (x, y) per frame and keypoint, px
``confidence``            (T, K) float32      heatmap peak x heatmap size (1 = uniform)
``covariance``            (T, K, 2, 2) f32    spatial covariance of each heatmap, px^2
``heatmaps`` (optional)   (T, K, h, w) f16    softmaxed heatmaps over each input window
``windows`` (optional)    (T, 2) float32      (x0, y0) of each frame's input window, in
                                              pixels of the frame resized by the
                                              ``letterbox`` scale (with ``heatmaps``)
``likelihood`` (optional) (T, K) float32      a likelihood in [0, 1]: the calibrated
                                              one (extraction), or the one named
                                              bodyparts state; NaN where there is none
``on_animal`` (optional)  (T, K) uint8        1 where the keypoint lay on the animal's
                                              foreground blob (extraction)
========================  ==================  ===========================================

Attributes: ``format``, ``video_path``, ``fps``, ``frame_size`` (H, W), ``n_frames``,
``frames_done``, ``config`` (JSON), ``checkpoint``, ``checkpoint_sha256``, ``version``,
``keypoint_names``, ``video_fingerprint`` ((n, h, w) uint8 thumbnails of a few frames,
:func:`video_fingerprint`), and ``letterbox`` (JSON) when heatmaps are stored. Named
bodyparts (:mod:`bkind_model.naming`) add ``kind`` ("named"), ``skeleton`` (JSON list of
``[name, name]`` edges) and ``named_from`` (the discovered keypoints' results file).

:meth:`KeypointResult.load` checks every field it reads (shapes, number kinds, values
finite or NaN within bounds, likelihood in [0, 1], fps, names, JSON through
:mod:`bkind_model.jsonfile`), so every reader of results files refuses a damaged or
crafted one in one line naming the file and the field.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import h5py
import numpy as np

from bkind_model.errors import BKindError, ConfigError, DiskFullError
from bkind_model.io.atomic import atomic_path, require_free, write_failed
from bkind_model.io.optional import movement_io
from bkind_model.io.video import PLAUSIBLE_FPS, VideoSource
from bkind_model.jsonfile import loads_json
from bkind_model.pose.likelihood import LIKELIHOOD_MEANING, calibrated_likelihood

FORMAT = "bkind-results-1"
#: The one individual of single-animal results, in movement, SLEAP and NWB files.
INDIVIDUAL = "animal"
#: How :meth:`KeypointResult.to_movement` (and the netCDF export) name the dimensions.
MOVEMENT_DIMENSIONS = "time, space, keypoints, individuals (movement 0.15-0.16)"


def heatmap_cells(config: dict[str, Any]) -> int | None:
    """Cells of the heatmaps of a results file's training config (None if unknown)."""
    size, stride = config.get("image_size"), config.get("heatmap_stride")
    return int(size // stride) ** 2 if size and stride else None


def default_keypoint_names(n_keypoints: int) -> list[str]:
    """Names of discovered keypoints before anyone names them: ``kp0``, ``kp1`` ..."""
    return [f"kp{i}" for i in range(n_keypoints)]


class ResultsError(BKindError):
    """A results file is missing, damaged or not ours."""


@dataclass
class KeypointResult:
    """Discovered keypoints of one video.

    Attributes
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` (x, y) in video pixels.
    confidence : ndarray
        ``(T, K)`` heatmap confidence (1 = uniform heatmap; larger is sharper).
    covariance : ndarray
        ``(T, K, 2, 2)`` covariance in px^2.
    metadata : dict
        ``video_path``, ``fps``, ``frame_size``, ``config``, ``checkpoint``,
        ``checkpoint_sha256``, ``version``, ``keypoint_names`` ...
    heatmaps : ndarray or h5py.Dataset or None
        ``(T, K, h, w)`` low-resolution heatmaps when stored (lazy when loaded).
    path : Path or None
        The file these results were loaded from (not stored).
    likelihood : ndarray or None
        ``(T, K)`` a likelihood in [0, 1] stored with the keypoints (extraction stores the
        calibrated one of :mod:`bkind_model.pose.likelihood`; named bodyparts their own);
        None in files written before: :meth:`likelihoods` computes it then.
    on_animal : ndarray or None
        ``(T, K)`` bool: the keypoint lay on the animal's foreground blob (extraction).
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    covariance: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    heatmaps: Any = None
    path: Path | None = None
    likelihood: np.ndarray | None = None
    on_animal: np.ndarray | None = None

    @property
    def video_path(self) -> Path | None:
        """The video these keypoints belong to, found again if both were moved.

        The absolute path recorded at extraction when it still exists; else the path
        recorded relative to the results file (a folder moved or copied whole); else the
        recorded absolute path (for the error message), or None when none is recorded.
        """
        recorded = self.metadata.get("video_path")
        if recorded is None:
            return None
        relative = self.metadata.get("video_relpath")
        if not Path(recorded).exists() and relative and self.path is not None:
            beside = (self.path.parent / relative).resolve()
            if beside.exists():
                return beside
        return Path(recorded)

    def require_video(self) -> Path:
        """:attr:`video_path`, or a :class:`ResultsError` saying to pass the video."""
        video = self.video_path
        if video is None:
            raise ResultsError(
                f"{self.path or 'these results'}: no video is recorded; give the video "
                "explicitly (e.g. `--video`)."
            )
        return video

    def video_mismatch(self, source: VideoSource) -> str | None:
        """Why ``source`` is not the video these keypoints were found in; None if it is.

        Compared with what the results recorded at extraction: the frame count, the frame
        size, the frame rate (unless ``source`` has none of its own, as an image folder) and
        the pictures (:func:`video_fingerprint`; files written before it was recorded
        skip this check). The fingerprint's few frames are decoded.

        Parameters
        ----------
        source : VideoSource
            The video at hand.

        Returns
        -------
        str or None
            The problem in one sentence (for an error or a warning naming the files).
        """
        size = self.metadata.get("frame_size")
        if self.n_frames != source.n_frames or (
            size is not None and tuple(size) != (source.height, source.width)
        ):
            recorded = f" {size[1]}x{size[0]} px," if size is not None else ""
            return (
                f"these keypoints are of another video ({self.n_frames} frames,{recorded} "
                f"while {source.path} has {source.n_frames} frames of {source.width}x"
                f"{source.height} px)."
            )
        fps = self.metadata.get("fps")
        if fps is not None and not source.fps_assumed and abs(fps - source.fps) > 0.01 * fps:
            return (
                f"these keypoints are of a video at {fps:g} frames/s while {source.path} "
                f"plays at {source.fps:g} frames/s (another video, or one re-timed)."
            )
        recorded_pictures = self.metadata.get("video_fingerprint")
        if recorded_pictures is not None and fingerprints_differ(
            np.asarray(recorded_pictures, np.uint8), video_fingerprint(source)
        ):
            return (
                f"these keypoints are of another video: {source.path} has their frame count, "
                "size and rate but other pictures (the video file was replaced)."
            )
        return None

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return self.keypoints.shape[0]

    @property
    def n_keypoints(self) -> int:
        """Number of keypoints K."""
        return self.keypoints.shape[1]

    @property
    def keypoint_names(self) -> list[str]:
        """Names of the keypoints (``kp0``, ``kp1`` ... until they are named)."""
        names = self.metadata.get("keypoint_names")
        return list(names) if names is not None else default_keypoint_names(self.n_keypoints)

    def to_movement(self) -> Any:
        """The keypoints as movement's poses dataset (needs the ``movement`` extra).

        Returns
        -------
        xarray.Dataset
            ``position`` ``(time, space, keypoints, individuals)`` px and ``confidence``
            ``(time, keypoints, individuals)`` (:meth:`likelihoods`; NaN where a keypoint
            is missing), time in seconds at :attr:`fps`, one individual
            (:data:`INDIVIDUAL`), ``source_software`` "bkind", ``video_path``, and
            ``dimension_names`` (:data:`MOVEMENT_DIMENSIONS`): the dimensions are named as in
            movement 0.15-0.16, the versions the ``movement`` extra allows (movement 0.17
            renamed ``keypoints`` and ``individuals`` to ``keypoint`` and ``individual``).

        Raises
        ------
        MissingDependencyError
            When movement is not installed.
        """
        load_poses = movement_io("load_poses")
        position = np.transpose(self.keypoints.astype(np.float64), (0, 2, 1))[..., None]
        confidence = self.likelihoods()
        confidence[~np.isfinite(self.keypoints).all(axis=-1)] = np.nan
        ds = load_poses.from_numpy(
            position_array=position,
            confidence_array=confidence[..., None],
            individual_names=[INDIVIDUAL],
            keypoint_names=self.keypoint_names,
            fps=self.fps,
            source_software="bkind",
        )
        if self.video_path is not None:
            ds.attrs["video_path"] = str(self.video_path)
        ds.attrs["dimension_names"] = MOVEMENT_DIMENSIONS
        return ds

    def likelihoods(self) -> np.ndarray:
        """``(T, K)`` likelihood in [0, 1]: the stored one, else calibrated now.

        Extraction stores a calibrated likelihood (:mod:`bkind_model.pose.likelihood`:
        the probability that the keypoint is stable); files written before it existed get
        one computed from their keypoints, confidence and covariance.
        """
        if self.likelihood is not None:
            return np.array(self.likelihood, np.float64)
        return calibrated_likelihood(
            self.keypoints,
            self.confidence,
            self.covariance,
            n_cells=heatmap_cells(self.metadata.get("config") or {}),
            on_animal=self.on_animal,
        )

    @property
    def fps(self) -> float:
        """Frames per second of the video."""
        return float(self.metadata.get("fps", 30.0))

    def save(self, path: str | Path, heatmaps_from: str | Path | None = None) -> Path:
        """Write the results atomically (a temporary file renamed into place).

        Parameters
        ----------
        path : str or Path
            The results file.
        heatmaps_from : str or Path, optional
            A results file of the same frames whose stored heatmaps and windows are
            copied over (streamed, not loaded), so saving edited keypoints over their
            source keeps its heatmaps. Ignored when it holds none or other frames.
        """
        path = Path(path)
        arrays = (self.keypoints, self.confidence, self.covariance, self.heatmaps)
        require_free(path, sum(np.asarray(a).nbytes for a in arrays if a is not None) / 2**20)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                _write_attrs(
                    f, self.metadata | {"n_frames": self.n_frames, "frames_done": self.n_frames}
                )
                f.create_dataset("keypoints", data=self.keypoints.astype(np.float32))
                f.create_dataset("confidence", data=self.confidence.astype(np.float32))
                f.create_dataset("covariance", data=self.covariance.astype(np.float32))
                if self.heatmaps is not None:
                    f.create_dataset("heatmaps", data=np.asarray(self.heatmaps, dtype=np.float16))
                if self.likelihood is not None:
                    f.create_dataset("likelihood", data=self.likelihood.astype(np.float32))
                if self.on_animal is not None:
                    f.create_dataset("on_animal", data=self.on_animal.astype(np.uint8))
            if heatmaps_from is not None and Path(heatmaps_from).is_file():
                _copy_heatmaps(Path(heatmaps_from), tmp, self.n_frames)
        return path

    @classmethod
    def load(cls, path: str | Path, heatmaps: bool = False) -> KeypointResult:
        """Read a results file.

        Parameters
        ----------
        path : str or Path
            A file written by :meth:`save` or by extraction.
        heatmaps : bool
            Load the heatmaps into memory (otherwise they stay None).

        Raises
        ------
        ResultsError
            If the file is missing, not HDF5, not a bkind results file, or any field is
            of the wrong shape, kind or range (the message names the file and field).
        """
        path = Path(path)
        if not path.is_file():
            raise ResultsError(f"{path}: results file not found. Run `bkind extract` first.")
        try:
            with h5py.File(path, "r") as f:
                metadata = _read_attrs(f)
                if metadata.get("format") != FORMAT:
                    raise ResultsError(f"{path}: not a bkind results file (no '{FORMAT}' format).")
                if metadata.get("frames_done") != metadata.get("n_frames"):
                    raise ResultsError(
                        f"{path}: extraction stopped after {metadata.get('frames_done')} of "
                        f"{metadata.get('n_frames')} frames; run `bkind extract` again to finish."
                    )
                return _read_checked(f, path, metadata, heatmaps)
        except ConfigError as exc:  # a JSON attribute refused by jsonfile
            raise ResultsError(f"{exc} Extract again (`bkind extract`).") from exc
        except (OSError, KeyError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ResultsError(
                f"{path}: cannot read as a results file (HDF5: {reason}); the file is damaged or "
                "not from `bkind extract`. Extract again."
            ) from exc


#: Largest coordinate magnitude a results file may hold, px (beyond it: damage).
MAX_COORDINATE_PX = 1e7

#: Largest confidence (heatmap peak x heatmap cells) and covariance magnitude accepted.
MAX_CONFIDENCE, MAX_COVARIANCE_PX2 = 1e7, 1e14

#: Attributes that must be text when present.
_TEXT_ATTRIBUTES = (
    "video_path",
    "video_relpath",
    "checkpoint",
    "checkpoint_sha256",
    "version",
    "kind",
    "named_from",
    "likelihood_meaning",
)


def _damaged(path: Path, field: str, problem: str) -> ResultsError:
    """The one-line error for a results file whose ``field`` is wrong."""
    return ResultsError(
        f"{path}: {field} {problem}; the file is damaged or was edited. Write it again "
        "(`bkind extract`, or `bkind name` for named bodyparts)."
    )


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A real number (not a bool, not text)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Refuse attributes of the wrong type or out of range (see the module's table)."""
    n_frames = metadata["n_frames"]
    if not isinstance(n_frames, int) or isinstance(n_frames, bool) or n_frames < 1:
        raise _damaged(path, "attribute 'n_frames'", f"is {n_frames!r}, not a count >= 1")
    if "fps" in metadata:
        fps = metadata["fps"]
        if not _is_number(fps) or not 0 < fps <= PLAUSIBLE_FPS[1]:
            raise _damaged(
                path,
                "attribute 'fps'",
                f"is {fps!r}, not a frame rate in (0, {PLAUSIBLE_FPS[1]:g}] frames/s",
            )
    size = metadata.get("frame_size")
    if size is not None and not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)
    ):
        raise _damaged(path, "attribute 'frame_size'", f"is {size!r}, not [height, width] px")
    for key in _TEXT_ATTRIBUTES:
        if key in metadata and not isinstance(metadata[key], str):
            raise _damaged(path, f"attribute {key!r}", f"is {metadata[key]!r}, not text")
    for key, kind in (("config", dict), ("letterbox", dict), ("skeleton", list)):
        if key in metadata and not isinstance(metadata[key], kind):
            raise _damaged(path, f"attribute {key!r}", f"is not a JSON {kind.__name__}")
    if "letterbox" in metadata and (problem := letterbox_problem(metadata["letterbox"])):
        raise _damaged(path, "attribute 'letterbox'", problem)
    edges = metadata.get("skeleton", [])
    if not all(
        isinstance(edge, list) and len(edge) == 2 and all(isinstance(v, str | int) for v in edge)
        for edge in edges
    ):
        raise _damaged(path, "attribute 'skeleton'", "is not a list of [name, name] edges")


def _check_names(path: Path, names: Any, n_keypoints: int) -> None:
    """Refuse keypoint names that are not ``n_keypoints`` distinct non-empty strings."""
    field = "attribute 'keypoint_names'"
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise _damaged(path, field, f"is {str(names)[:80]!r}, not a list of names")
    if len(names) != n_keypoints:
        raise _damaged(path, field, f"has {len(names)} names for {n_keypoints} keypoints")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise _damaged(path, field, f"names {', '.join(map(repr, twice))} more than once")


def _dataset(
    f: h5py.File, path: Path, name: str, shape: tuple[int | None, ...], kinds: str = "f"
) -> h5py.Dataset | None:
    """Dataset ``name`` (None when absent) after checking its shape and number kind.

    ``shape`` gives each axis's length, None for any; ``kinds`` the accepted numpy
    kinds (``"f"``: float).
    """
    if name not in f:
        return None
    data = f[name]
    field = f"dataset {name!r}"
    if not isinstance(data, h5py.Dataset) or data.dtype.kind not in kinds:
        kind = data.dtype if isinstance(data, h5py.Dataset) else "a group"
        wanted = "float" if kinds == "f" else "numbers"
        raise _damaged(path, field, f"holds {kind}, not {wanted}")
    if len(data.shape) != len(shape) or any(
        want is not None and have != want for have, want in zip(data.shape, shape, strict=False)
    ):
        wanted = "x".join("?" if n is None else str(n) for n in shape)
        raise _damaged(path, field, f"has shape {data.shape}, not {wanted}")
    return data


def _values(path: Path, name: str, data: h5py.Dataset, low: float, high: float) -> np.ndarray:
    """The dataset's values, refusing any outside ``[low, high]`` but NaN (missing)."""
    values = data[()]
    bad = ~(np.isnan(values) | ((values >= low) & (values <= high)))
    if bad.any():
        where = np.argwhere(bad)[0]
        raise _damaged(
            path,
            f"dataset {name!r}",
            f"holds {float(values[tuple(where)]):g} at frame {where[0]}, outside [{low:g}, {high:g}] "
            "(NaN marks a missing value)",
        )
    return values


def _read_checked(
    f: h5py.File, path: Path, metadata: dict[str, Any], heatmaps: bool
) -> KeypointResult:
    """The :class:`KeypointResult` of an open results file, every field checked."""
    _check_metadata(path, metadata)
    n_frames = metadata["n_frames"]
    points = _dataset(f, path, "keypoints", (n_frames, None, 2))
    if points is None:
        raise _damaged(path, "dataset 'keypoints'", "is missing")
    k = points.shape[1]
    if k < 1:
        raise _damaged(path, "dataset 'keypoints'", "holds no keypoints (K = 0)")
    if "keypoint_names" in metadata:
        _check_names(path, metadata["keypoint_names"], k)
    if "video_fingerprint" in metadata:
        metadata["video_fingerprint"] = _fingerprint_of(path, metadata, n_frames)
    shapes = {
        "confidence": (n_frames, k),
        "covariance": (n_frames, k, 2, 2),
        "likelihood": (n_frames, k),
        "heatmaps": (n_frames, k, None, None),
        "windows": (n_frames, 2),
    }
    found = {name: _dataset(f, path, name, shape) for name, shape in shapes.items()}
    confidence, covariance = found["confidence"], found["covariance"]
    if confidence is None or covariance is None:
        missing = "confidence" if confidence is None else "covariance"
        raise _damaged(path, f"dataset {missing!r}", "is missing")
    on_animal = _dataset(f, path, "on_animal", (n_frames, k), "biuf")
    likelihood = found["likelihood"]
    maps = found["heatmaps"]
    return KeypointResult(
        _values(path, "keypoints", points, -MAX_COORDINATE_PX, MAX_COORDINATE_PX),
        _values(path, "confidence", confidence, 0.0, MAX_CONFIDENCE),
        _values(path, "covariance", covariance, -MAX_COVARIANCE_PX2, MAX_COVARIANCE_PX2),
        metadata,
        maps[()] if heatmaps and maps is not None else None,
        path,
        _values(path, "likelihood", likelihood, 0.0, 1.0) if likelihood is not None else None,
        on_animal[()] > 0 if on_animal is not None else None,
    )


def letterbox_problem(values: Any) -> str | None:
    """What is wrong with a stored letterbox dict (checkpoints, results), or None.

    A letterbox is ``{"source_size": [H, W], "input_size": [h, w], "scale": s, "pad":
    [top, left]}`` (:meth:`bkind_model.frames.letterbox.Letterbox.to_dict`): sizes of
    positive whole pixels, a positive finite scale and whole non-negative padding.
    """
    if not isinstance(values, dict):
        return f"is {type(values).__name__}, not a letterbox dict"

    def pair(key: str, low: int) -> bool:
        value = values.get(key)
        return (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value)
        )

    for key, low in (("source_size", 1), ("input_size", 1), ("pad", 0)):
        if not pair(key, low):
            return f"has {key} {values.get(key)!r}, not two whole numbers >= {low}"
    scale = values.get("scale")
    if not (_is_number(scale) and 0 < scale < float("inf")):
        return f"has scale {scale!r}, not a positive number"
    return None


#: Frames of a video kept in its fingerprint, and the largest side of their thumbnails, px.
FINGERPRINT_FRAMES, FINGERPRINT_SIZE = 8, 32

#: Gray levels (of 255) by which a thumbnail pixel may differ, beyond a shift of the whole
#: frame's brightness, before two frames count as different pictures (codec noise stays
#: well below: thumbnail pixels average many pixels).
FINGERPRINT_TOLERANCE = 40


def fingerprint_frames(n_frames: int) -> np.ndarray:
    """``(n,)`` the frame numbers a fingerprint of a video of ``n_frames`` frames holds."""
    count = min(FINGERPRINT_FRAMES, n_frames)
    return np.unique(np.linspace(0, n_frames - 1, count).round().astype(np.int64))


def video_fingerprint(source: VideoSource) -> np.ndarray:
    """A cheap summary of a video's pictures: small grayscale thumbnails of a few frames.

    The frames are read by random access; :class:`FingerprintCollector` takes them from
    frames already being read in order instead.

    Parameters
    ----------
    source : VideoSource
        The video (or image folder).

    Returns
    -------
    ndarray
        ``(n, h, w)`` uint8: the frames :func:`fingerprint_frames` in gray (ITU-R 601
        luma), each averaged over ``h x w`` blocks (``h, w <= FINGERPRINT_SIZE``).
        Extraction stores it as the ``video_fingerprint`` attribute of a results file;
        :meth:`KeypointResult.video_mismatch` compares it with the video at hand.
    """
    return FingerprintCollector(source.n_frames).fingerprint(source)


def _thumbnails(frames: np.ndarray) -> np.ndarray:
    """``(n, h, w)`` uint8 gray block means of ``(n, H, W, 3)`` frames (see above)."""
    gray = frames @ np.array([0.299, 0.587, 0.114])
    height, width = gray.shape[1:]
    rows = np.arange(min(FINGERPRINT_SIZE, height)) * height // min(FINGERPRINT_SIZE, height)
    cols = np.arange(min(FINGERPRINT_SIZE, width)) * width // min(FINGERPRINT_SIZE, width)
    sums = np.add.reduceat(np.add.reduceat(gray, rows, axis=1), cols, axis=2)
    counts = np.diff(rows, append=height)[:, None] * np.diff(cols, append=width)[None]
    return np.round(sums / counts).astype(np.uint8)


class FingerprintCollector:
    """A video's :func:`video_fingerprint`, taken from frames as they stream by.

    Extraction reads every frame in order anyway: it shows each batch to :meth:`see`, and
    :meth:`fingerprint` reads by random access only the frames it did not see (those done
    before a resumed run), instead of seeking to all of them (a second or more per video).

    Parameters
    ----------
    n_frames : int
        Frames of the video.
    """

    def __init__(self, n_frames: int) -> None:
        self.wanted = fingerprint_frames(n_frames)
        self.seen: dict[int, np.ndarray] = {}

    def see(self, start: int, frames: np.ndarray) -> None:
        """Keep the wanted frames among ``frames`` ``(B, H, W, 3)``, frames ``start``..."""
        inside = self.wanted[(self.wanted >= start) & (self.wanted < start + len(frames))]
        if len(inside):
            self.seen.update(
                zip(inside.tolist(), _thumbnails(frames[inside - start]), strict=True)
            )

    def fingerprint(self, source: VideoSource) -> np.ndarray:
        """The ``(n, h, w)`` uint8 fingerprint, reading from ``source`` what was not seen."""
        missing = np.array([f for f in self.wanted.tolist() if f not in self.seen], np.int64)
        if len(missing):
            self.seen.update(zip(missing.tolist(), _thumbnails(source[missing]), strict=True))
        return np.stack([self.seen[f] for f in self.wanted.tolist()])


def fingerprints_differ(recorded: np.ndarray, seen: np.ndarray) -> bool:
    """Whether two :func:`video_fingerprint` show other pictures (beyond codec noise).

    A frame differs when, after removing the median shift of its brightness, some
    thumbnail pixel differs by more than :data:`FINGERPRINT_TOLERANCE` gray levels; the
    videos differ when half the frames or more do (or the fingerprints' shapes differ).
    """
    if recorded.shape != seen.shape:
        return True
    diff = recorded.astype(np.int16) - seen.astype(np.int16)
    diff -= np.median(diff, axis=(1, 2), keepdims=True).astype(np.int16)
    differing = np.abs(diff).max(axis=(1, 2)) > FINGERPRINT_TOLERANCE
    return bool(2 * differing.sum() >= len(differing))


def _fingerprint_of(path: Path, metadata: dict[str, Any], n_frames: int) -> np.ndarray:
    """The stored ``video_fingerprint`` attribute as ``(n, h, w)`` uint8, checked."""
    values = np.asarray(metadata["video_fingerprint"])
    n = len(fingerprint_frames(n_frames))
    if (
        values.ndim != 3
        or values.shape[0] != n
        or not 1 <= min(values.shape[1:]) <= max(values.shape[1:]) <= FINGERPRINT_SIZE
        or values.dtype.kind not in "iu"
        or values.min() < 0
        or values.max() > 255
    ):
        raise _damaged(
            path,
            "attribute 'video_fingerprint'",
            f"is not {n} gray thumbnails of at most {FINGERPRINT_SIZE} px",
        )
    return values.astype(np.uint8)


def _copy_heatmaps(source: Path, target: Path, n_frames: int) -> None:
    """Copy ``heatmaps`` and ``windows`` of ``source`` into ``target`` if they fit."""
    with h5py.File(source, "r") as src, h5py.File(target, "a") as dst:
        names = ("heatmaps", "windows")
        if "letterbox" not in src.attrs or not all(name in src for name in names):
            return
        if src["heatmaps"].shape[0] != n_frames or "heatmaps" in dst:
            return
        for name in names:
            src.copy(src[name], dst, name=name)


def _write_attrs(f: h5py.File, metadata: dict[str, Any]) -> None:
    f.attrs["format"] = FORMAT
    write_attributes(f, {k: v for k, v in metadata.items() if k != "format"})


def write_attributes(f: h5py.File, metadata: dict[str, Any]) -> None:
    """Store metadata as HDF5 attributes: dicts, lists of dicts or lists as JSON, str lists as strings.

    None values are left out; paths become strings.
    """
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, Path):
            f.attrs[key] = str(value)
        elif isinstance(value, dict) or (
            isinstance(value, list | tuple) and value and isinstance(value[0], dict | list | tuple)
        ):
            f.attrs[key] = json.dumps(value)
        elif isinstance(value, list | tuple) and value and isinstance(value[0], str):
            f.attrs[key] = np.array(value, dtype=h5py.string_dtype())
        else:
            f.attrs[key] = value


def _read_attrs(f: h5py.File) -> dict[str, Any]:
    return read_attributes(f, ("config", "letterbox", "skeleton"))


def read_attributes(f: h5py.File, json_keys: tuple[str, ...]) -> dict[str, Any]:
    """Inverse of :func:`write_attributes`; the attributes named in ``json_keys`` are JSON.

    Raises
    ------
    ConfigError
        When a JSON attribute is not acceptable JSON (:func:`~bkind_model.jsonfile.
        loads_json`), naming the file and the attribute.
    """
    metadata: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if isinstance(value, np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        if key in json_keys and isinstance(value, str):
            value = loads_json(value, source=f"{f.filename}: attribute {key!r}")
        metadata[key] = value
    return metadata


@contextlib.contextmanager
def _quiet_h5py_failures() -> Iterator[None]:
    """Silence h5py's reports of writes it could not flush while its objects are freed.

    When a disk fills, h5py objects freed while the error propagates report their failed
    flushes (``ObjectID._dealloc``, through :func:`sys.excepthook` and
    :func:`sys.unraisablehook`); the error that matters
    is raised anyway. On an error, objects are collected inside, so no report comes later
    (at exit).
    """
    hook, unraisable = sys.excepthook, sys.unraisablehook

    def quiet(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if not isinstance(value, OSError | RuntimeError):
            hook(kind, value, tb)  # type: ignore[arg-type]

    def quiet_unraisable(report: sys.UnraisableHookArgs) -> None:
        if not isinstance(report.exc_value, OSError | RuntimeError):
            unraisable(report)

    sys.excepthook, sys.unraisablehook = quiet, quiet_unraisable
    try:
        yield
    except BaseException:
        gc.collect()  # free the failed objects now, while their reports are silenced
        raise
    finally:
        sys.excepthook, sys.unraisablehook = hook, unraisable


class ResultsWriter:
    """Writes a results file frame batch by frame batch, resumable after interruption.

    The file is built as ``.<name>.part`` beside the target and renamed when complete.
    A ``.part`` file left by an interrupted run with the same checkpoint and video is
    continued from ``frames_done``.

    Parameters
    ----------
    path : str or Path
        Final results file.
    n_frames, n_keypoints : int
        T and K.
    metadata : dict
        Stored as attributes; must hold ``checkpoint_sha256`` and ``video_path``.
    heatmap_size : tuple of int, optional
        ``(h, w)`` of stored heatmaps; None stores none.
    """

    def __init__(
        self,
        path: str | Path,
        n_frames: int,
        n_keypoints: int,
        metadata: dict[str, Any],
        heatmap_size: tuple[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(f".{self.path.name}.part")
        self.n_frames = n_frames
        require_free(self.path, 1.0)
        try:
            self.file = self._open_or_create(n_frames, n_keypoints, metadata, heatmap_size)
        except (OSError, RuntimeError) as exc:
            self.part.unlink(missing_ok=True)
            raise write_failed(self.path, exc) from exc
        self.frames_done = int(self.file.attrs["frames_done"])

    def _open_or_create(self, n_frames, n_keypoints, metadata, heatmap_size) -> h5py.File:
        if self.part.exists():
            try:
                f = h5py.File(self.part, "a")
                same = (
                    f.attrs.get("checkpoint_sha256") == metadata["checkpoint_sha256"]
                    and f.attrs.get("video_path") == str(metadata["video_path"])
                    and f.attrs.get("n_frames") == n_frames
                    and ("heatmaps" in f) == (heatmap_size is not None)
                )
                if same:
                    return f
                f.close()
            except OSError:
                pass  # a damaged partial file: start over
            self.part.unlink()
        f = h5py.File(self.part, "w")
        _write_attrs(f, metadata | {"n_frames": n_frames, "frames_done": 0})
        chunk = max(1, min(n_frames, 256))
        f.create_dataset(
            "keypoints", (n_frames, n_keypoints, 2), np.float32, chunks=(chunk, n_keypoints, 2)
        )
        f.create_dataset(
            "confidence", (n_frames, n_keypoints), np.float32, chunks=(chunk, n_keypoints)
        )
        f.create_dataset(
            "covariance",
            (n_frames, n_keypoints, 2, 2),
            np.float32,
            chunks=(chunk, n_keypoints, 2, 2),
        )
        if heatmap_size is not None:
            f.create_dataset("windows", (n_frames, 2), np.float32)
            f.create_dataset(
                "heatmaps",
                (n_frames, n_keypoints, *heatmap_size),
                np.float16,
                chunks=(1, n_keypoints, *heatmap_size),
                compression="gzip",
                compression_opts=1,
            )
        return f

    def write(
        self,
        start: int,
        keypoints,
        confidence,
        covariance,
        heatmaps=None,
        windows=None,
        on_animal=None,
    ) -> None:
        """Store a batch of frames starting at frame ``start`` (arrays shaped as above).

        ``on_animal`` (``(B, K)`` bool, optional) says which keypoints lie on the animal's
        foreground; the calibrated likelihood uses it (frames without it count as on).
        """
        stop = start + len(keypoints)
        arrays = (keypoints, confidence, covariance, heatmaps, windows)
        batch_mb = sum(np.asarray(a).nbytes for a in arrays if a is not None) / 2**20
        try:
            require_free(self.path, 2 * batch_mb)  # before HDF5 meets a full disk
        except DiskFullError:
            self.close()  # the partial file is sound: a later run resumes it
            raise
        try:
            with _quiet_h5py_failures():
                self.file["keypoints"][start:stop] = keypoints
                self.file["confidence"][start:stop] = confidence
                self.file["covariance"][start:stop] = covariance
                if heatmaps is not None:
                    self.file["heatmaps"][start:stop] = heatmaps
                    self.file["windows"][start:stop] = windows
                if on_animal is not None:
                    shape = self.file["confidence"].shape
                    if "on_animal" not in self.file:
                        self.file.create_dataset("on_animal", shape, np.uint8, fillvalue=1)
                    self.file["on_animal"][start:stop] = on_animal
                self.file.flush()
                self.file.attrs["frames_done"] = stop
                self.file.flush()
        except (OSError, RuntimeError) as exc:
            self._abandon()
            raise write_failed(self.path, exc) from exc
        self.frames_done = stop

    def add_metadata(self, metadata: dict[str, Any]) -> None:
        """Store more attributes, known only once the frames are done (a fingerprint)."""
        write_attributes(self.file, metadata)

    def finish(self) -> Path:
        """Close, check and sync the complete file, then move it into place.

        Raises
        ------
        WriteError
            When the file could not be completed (a full disk ...); the previous file at
            :attr:`path` is intact.
        """
        try:
            with _quiet_h5py_failures():
                self._store_likelihood()
                self.file.close()
            with h5py.File(self.part, "r") as check:  # what reached the disk is complete
                done = int(check.attrs["frames_done"])
            if done != self.n_frames:
                raise OSError(f"only {done} of {self.n_frames} frames were stored")
            with open(self.part, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(self.part, self.path)
        except (OSError, RuntimeError, KeyError) as exc:
            self._abandon()
            raise write_failed(self.path, exc) from exc
        return self.path

    def _store_likelihood(self) -> None:
        """Add the calibrated likelihood of the complete keypoints (replacing a stale one)."""
        if "likelihood" in self.file:  # a finish interrupted after writing it
            del self.file["likelihood"]
        config = read_attributes(self.file, ("config",)).get("config") or {}
        values = calibrated_likelihood(
            self.file["keypoints"][()],
            self.file["confidence"][()],
            self.file["covariance"][()],
            n_cells=heatmap_cells(config),
            on_animal=self.file["on_animal"][()] > 0 if "on_animal" in self.file else None,
        )
        self.file.create_dataset("likelihood", data=values.astype(np.float32))
        self.file.attrs["likelihood_meaning"] = LIKELIHOOD_MEANING
        self.file.flush()

    def _abandon(self) -> None:
        """Drop a partial file that could not be written (a full disk): it frees space.

        h5py reports the writes it could not flush while its objects are freed ("Exception
        ignored ..."); they are closed here with those reports silenced, not at exit.
        Writes are checked against the free space first (:func:`require_free`) so that
        HDF5 rarely meets a full disk: when it does, a dataset whose close failed stays
        open inside the library, which may then crash at exit.
        """
        with contextlib.suppress(OSError):
            os.truncate(self.part, 0)  # its blocks back to the disk, so closing can flush
        with _quiet_h5py_failures(), contextlib.suppress(Exception):
            self.file.close()
        self.part.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without finishing (the ``.part`` file stays for a later resume).

        Errors are not raised here (this runs while another error is on its way); a
        damaged ``.part`` file is detected and rebuilt by the next run.
        """
        if self.file.id.valid:
            with contextlib.suppress(OSError, RuntimeError):
                self.file.close()
