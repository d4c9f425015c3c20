"""Labelled joints, read from and written to DeepLabCut labels files.

Every layout DeepLabCut writes is read: single-animal ``CollectedData_*.h5`` / ``.csv``
(image paths as one index column, or as the three columns ``labeled-data``, video, image
of DeepLabCut >= 2.2), multi-animal files holding one animal, and prediction files (their
``likelihood`` columns are ignored). Anything else is refused with one
:class:`LabelsError` line naming the file and what to do, never a traceback.
Missing labels stay NaN.

HDF5 files are checked before pandas opens them (:func:`refuse_pickled_code`): PyTables,
under ``pandas.read_hdf``, unpickles attributes and object arrays, and a pickle can run any
code, so a file whose pickles would import a class or a function is refused unread.

Written as DeepLabCut and napari-deeplabcut read them (:func:`write_labels`,
:func:`write_collected_data`): one pandas table under ``df_with_missing`` in HDF5
(:func:`write_dlc_table`, which pandas 2 and 3 both read), or a CSV with the three header
rows; rows indexed by ``labeled-data/<video stem>/imgNNNN.png``
(DeepLabCut's names of extracted frames, :func:`image_name`, whose PNGs
:func:`write_images` saves), an existing file replaced only when asked.
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from PIL import Image

from bkind_model.errors import BKindError
from bkind_model.io.atomic import atomic_path, ensure_folder
from bkind_model.io.outputs import check_output
from bkind_model.io.video import open_video

logger = logging.getLogger(__name__)

#: Column levels of a single-animal and of a multi-animal DeepLabCut file.
SINGLE_ANIMAL_LEVELS = ("scorer", "bodyparts", "coords")
MULTI_ANIMAL_LEVELS = ("scorer", "individuals", "bodyparts", "coords")
#: The "individual" under which multi-animal DeepLabCut files keep unique bodyparts.
UNIQUE_BODYPARTS = "single"
#: File suffixes read as HDF5 / CSV.
HDF_SUFFIXES = (".h5", ".hdf5")
CSV_SUFFIXES = (".csv",)
#: Preferred tables of an HDF5 file holding several (DeepLabCut, napari-deeplabcut).
PREFERRED_KEYS = ("/df_with_missing", "/keypoints")

_EXPORT_HINT = "export the labels again from DeepLabCut (CollectedData_<scorer>.h5 or .csv)"

# What pandas, PyTables, HDF5 and the csv module raise on files they cannot read
# (HDF5ExtError is a RuntimeError; pandas' ParserError/EmptyDataError are ValueErrors).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    ImportError,
    UnicodeDecodeError,
    csv.Error,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
)


class LabelsError(BKindError):
    """A labels file cannot be read or does not fit the keypoints it is compared with."""


@dataclass
class Labels:
    """Labelled joints of N frames.

    Attributes
    ----------
    joints : ndarray
        ``(N, J, 2)`` (x, y) px; NaN where a joint is not labelled (x and y together).
    names : list of str
        The J joint names.
    frames : list of str
        One identifier per labelled frame (an image path, or a frame number).
    body_length : float
        Median distance between the two joints of ``body_axis``, over the frames that
        label both, px.
    """

    joints: np.ndarray
    names: list[str]
    frames: list[str]
    body_length: float

    @property
    def labelled(self) -> np.ndarray:
        """``(N, J)`` bool: True where the joint is labelled in the frame."""
        return np.asarray(np.isfinite(self.joints).all(axis=-1), dtype=bool)

    @property
    def missing_per_joint(self) -> dict[str, int]:
        """Number of frames in which each joint is not labelled, by joint name."""
        counts = (~self.labelled).sum(axis=0)
        return {name: int(c) for name, c in zip(self.names, counts, strict=True)}

    @property
    def unlabelled(self) -> list[str]:
        """Joints without a single label (kept, all NaN)."""
        return [self.names[j] for j in np.flatnonzero(~self.labelled.any(axis=0))]


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """The gist of an exception message on one line (HDF5 errors span many)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(items: list[str], limit: int = 8) -> str:
    """``a, b, c`` with at most ``limit`` items, then ``(+N more)``."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} (+{len(items) - limit} more)"


def load_labels(path: str | Path, body_axis: tuple[str, str] | None = None) -> Labels:
    """Read labelled joints from a DeepLabCut labels file.

    Parameters
    ----------
    path : str or Path
        A DeepLabCut ``CollectedData_*.h5`` / ``.csv`` or prediction file: single animal,
        or multi-animal with exactly one animal (unique bodyparts, DeepLabCut's
        ``single`` individual, are left out). In HDF5, any one pandas table with
        DeepLabCut columns (``df_with_missing`` or ``keypoints`` preferred).
    body_axis : tuple of str, optional
        Two joints whose median distance normalises errors (see :func:`labels_from_joints`).

    Returns
    -------
    Labels
        Joints in px, NaN where not labelled; frame identifiers ``labeled-data/vid/img.png``.

    Raises
    ------
    LabelsError
        For a missing file, an unknown suffix, a file that is not a DeepLabCut labels file,
        several animals, no bodyparts, or ``body_axis`` joints that are not in the file.
        The message is one line naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise LabelsError(f"{path}: labels file not found; check the path.")
    if not path.is_file():
        raise LabelsError(
            f"{path}: a folder, not a labels file; pass the CollectedData_*.h5 or .csv in it."
        )
    suffix = path.suffix.lower()
    if suffix not in HDF_SUFFIXES + CSV_SUFFIXES:
        raise LabelsError(
            f"{path}: unknown labels format '{path.suffix}'; use a DeepLabCut .h5/.csv "
            "or a synthetic .groundtruth.npz."
        )
    try:
        frame = _read_hdf(path) if suffix in HDF_SUFFIXES else _read_csv(path)
        joints, names, frames = _frame_to_joints(frame, path)
    except _READ_ERRORS as exc:
        raise LabelsError(
            f"{path}: not a readable DeepLabCut labels file ({_one_line(exc)}); {_EXPORT_HINT}."
        ) from exc
    labels = labels_from_joints(joints, names, frames, body_axis, source=path)
    if labels.unlabelled:
        logger.warning(
            "%s: bodyparts without any label (kept as NaN): %s", path, ", ".join(labels.unlabelled)
        )
    return labels


def labels_from_joints(
    joints: np.ndarray,
    names: list[str],
    frames: list[str],
    body_axis: tuple[str, str] | None = None,
    *,
    source: str | Path | None = None,
) -> Labels:
    """Labels from joint arrays, with the body length that normalises errors.

    Parameters
    ----------
    joints : ndarray
        ``(N, J, 2)`` (x, y) px; NaN where not labelled. Copied; a joint with x or y
        missing is missing as a whole.
    names : list of str
        The J joint names.
    frames : list of str
        One identifier per frame.
    body_axis : tuple of str, optional
        Two joints whose median distance (over frames labelling both) is the body length.
        Default: ``snout`` and ``tailbase``/``tail_base`` when labelled, else the first
        and the last labelled joint.
    source : str or Path, optional
        The file the joints come from, named in error messages.

    Raises
    ------
    LabelsError
        If the arrays disagree in shape, nothing is labelled, a ``body_axis`` joint is not
        among ``names``, or no frame labels both ``body_axis`` joints.
    """
    where = f"{source}: " if source is not None else ""
    joints = np.array(joints, dtype=np.float64)
    names = [str(name) for name in names]
    frames = [str(frame) for frame in frames]
    if joints.ndim != 3 or joints.shape[-1] != 2 or joints.shape[1] != len(names):
        raise LabelsError(
            f"{where}joints of shape {joints.shape} do not match {len(names)} joint names; "
            "expected (frames, joints, 2)."
        )
    if len(frames) != len(joints):
        raise LabelsError(
            f"{where}{len(frames)} frame identifiers for {len(joints)} frames of joints."
        )
    labelled = np.asarray(np.isfinite(joints).all(axis=-1), dtype=bool)  # (N, J)
    joints[~labelled] = np.nan
    labelled_names = [names[j] for j in np.flatnonzero(labelled.any(axis=0))]
    if len(labelled_names) < 2:
        raise LabelsError(
            f"{where}{len(labelled_names)} of {len(names)} bodyparts have labels "
            f"({_listing(labelled_names) or 'none'}); label at least two to evaluate."
        )
    if body_axis is None:
        first = "snout" if "snout" in labelled_names else labelled_names[0]
        tails = [n for n in ("tailbase", "tail_base") if n in labelled_names]
        last: str | None = tails[0] if tails else None
        if last is None or last == first:
            last = next(n for n in reversed(labelled_names) if n != first)
        body_axis = (first, last)
    unknown = [n for n in body_axis if n not in names]
    if unknown:
        raise LabelsError(
            f"{where}body_axis joint(s) {', '.join(map(repr, unknown))} not in the labels; "
            f"available bodyparts: {', '.join(names)}."
        )
    a, b = names.index(body_axis[0]), names.index(body_axis[1])
    both = labelled[:, a] & labelled[:, b]
    if a == b or not both.any():
        raise LabelsError(
            f"{where}no frame labels both '{body_axis[0]}' and '{body_axis[1]}', so the body "
            f"length is unknown; pass body_axis=({_best_axis(labelled, names)}), two "
            "bodyparts labelled in the same frames."
        )
    distance = np.linalg.norm(joints[both, a] - joints[both, b], axis=-1)
    return Labels(joints, names, frames, float(np.median(distance)))


def _best_axis(labelled: np.ndarray, names: list[str]) -> str:
    """The two joints labelled together in the most frames, as ``'a', 'b'``."""
    together = labelled.T.astype(np.int64) @ labelled.astype(np.int64)
    np.fill_diagonal(together, -1)
    a, b = np.unravel_index(int(np.argmax(together)), together.shape)
    return f"'{names[min(a, b)]}', '{names[max(a, b)]}'"


class _PickledCode(Exception):
    """A pickle asked for a class or a function (its ``module.name`` is the message)."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Rebuilds plain data only: lists, dicts, tuples, strings, numbers, None.

    Every class or function a pickle names goes through :meth:`find_class`, and a pickle can
    call nothing else, so refusing them all leaves it no way to run code (the restriction of
    the Python documentation's "Restricting Globals").
    """

    def find_class(self, module: str, name: str) -> Any:
        raise _PickledCode(f"{module}.{name}")


def _pickled_code(data: bytes) -> str | None:
    """The first class or function that unpickling ``data`` would import; None if none.

    Tried with every text encoding PyTables tries (ASCII, then latin-1, then bytes); data
    that is no pickle, or a broken one, imports nothing.
    """
    for encoding in ("ASCII", "latin1", "bytes"):
        try:
            _PlainDataUnpickler(io.BytesIO(data), encoding=encoding).load()
        except _PickledCode as exc:
            return str(exc)
        except Exception:  # not a pickle (any error): PyTables keeps the bytes then
            continue
    return None


def _code_in_attributes(obj: h5py.HLObject) -> tuple[str, str] | None:
    """``(attribute, class)`` of the first attribute of ``obj`` PyTables would unpickle to code.

    PyTables unpickles scalar attributes of byte strings (HDF5 strings not marked UTF-8)
    that end in ``.`` once trailing NULs are stripped. One that h5py cannot read counts as
    code: it cannot be checked.
    """
    for name in obj.attrs:
        attr = h5py.h5a.open(obj.id, name.encode("utf-8"))
        kind = attr.get_type()
        if kind.get_class() != h5py.h5t.STRING or kind.get_cset() == h5py.h5t.CSET_UTF8:
            continue
        if attr.shape not in ((), None):
            continue
        try:
            value = obj.attrs[name]
        except (OSError, TypeError, ValueError, UnicodeDecodeError):
            return name, "an attribute that cannot be checked"
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        raw = bytes(raw).rstrip(b"\x00") if isinstance(raw, bytes | np.bytes_) else b""
        found = _pickled_code(raw) if raw.endswith(b".") else None
        if found is not None:
            return name, found
    return None


def _code_in_rows(dataset: h5py.Dataset) -> str | None:
    """The class of the first row of ``dataset`` PyTables would unpickle to code; None if none.

    Object arrays (pandas' object columns in "fixed" files) are variable-length rows of
    pickles.
    """
    base = h5py.check_vlen_dtype(dataset.dtype)
    if base is None or h5py.check_string_dtype(dataset.dtype) is not None:
        return None
    for row in dataset[()].reshape(-1):
        found = _pickled_code(np.asarray(row).tobytes())
        if found is not None:
            return found
    return None


def refuse_pickled_code(path: str | Path) -> None:
    """Refuse an HDF5 file whose reading through pandas could run code.

    PyTables, under ``pandas.read_hdf`` / ``HDFStore``, unpickles byte-string attributes
    ending in ``.`` and the rows of object arrays, and unpickling can import and call
    anything. Each such value is first rebuilt here by an unpickler that refuses every
    class and function: plain data (the lists and dicts of pandas' "table" files, which
    DeepLabCut's predictions are) passes; anything else refuses the file before pandas
    opens it. Soft and external links are refused too (PyTables may follow them; pandas
    and DeepLabCut never write them).

    Parameters
    ----------
    path : str or Path
        An HDF5 file.

    Raises
    ------
    LabelsError
        When a value would import a class or a function, or the file holds a link; or
        when the file is not HDF5. One line naming the file, the place and the fix.
    """
    path = Path(path)
    found: list[str] = []

    def visit(name: str, obj: h5py.HLObject) -> None:
        if found:
            return
        where = f"/{name}".rstrip("/") or "/"
        attribute = _code_in_attributes(obj)
        if attribute is not None:
            found.extend([f"attribute '{attribute[0]}' of {where}", attribute[1]])
        elif isinstance(obj, h5py.Dataset):
            row = _code_in_rows(obj)
            if row is not None:
                found.extend([f"dataset {where}", row])
        elif isinstance(obj, h5py.Group):
            for member in obj:
                if not isinstance(obj.get(member, getlink=True), h5py.HardLink):
                    found.extend([f"{where.rstrip('/')}/{member}", "a link"])
                    return

    try:
        with h5py.File(path, "r") as f:
            visit("", f)
            f.visititems(visit)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise LabelsError(
            f"{path}: not an HDF5 file, or a damaged one (HDF5 cannot open it); {_EXPORT_HINT}."
        ) from exc
    if found:
        place, what = found
        reason = (
            "a link to another object or file, which DeepLabCut labels never hold"
            if what == "a link"
            else f"a pickled Python object that would run code when read ({what})"
        )
        raise LabelsError(
            f"{path}: {place} is {reason}; refused unread (nothing ran). Use labels you "
            f"trust: {_EXPORT_HINT}."
        )


def _read_hdf(path: Path) -> pd.DataFrame:
    """The DeepLabCut table of a pandas HDF5 file (any key), checked for pickled code."""
    refuse_pickled_code(path)
    try:
        store = pd.HDFStore(path, mode="r")
    except ImportError as exc:
        raise LabelsError(
            f"{path}: reading DeepLabCut .h5 labels needs PyTables ({_one_line(exc)}); "
            "install it with `pip install tables`, or pass the .csv."
        ) from exc
    except _READ_ERRORS as exc:
        raise LabelsError(
            f"{path}: not an HDF5 file, or a damaged one (HDF5 cannot open it); {_EXPORT_HINT}."
        ) from exc
    with store:
        keys = list(store.keys())
        if not keys:
            raise LabelsError(
                f"{path}: an HDF5 file without any pandas table, so not DeepLabCut labels; "
                f"{_EXPORT_HINT}."
            )
        found = {key: store.get(key) for key in keys}
    tables = {
        key: obj
        for key, obj in found.items()
        if isinstance(obj, pd.DataFrame) and obj.columns.nlevels in (3, 4)
    }
    if not tables:
        raise LabelsError(
            f"{path}: no table with DeepLabCut columns (scorer/bodyparts/coords) in keys "
            f"{_listing(keys)}; {_EXPORT_HINT}."
        )
    if len(tables) == 1:
        return next(iter(tables.values()))
    for key in PREFERRED_KEYS:
        if key in tables:
            return tables[key]
    raise LabelsError(
        f"{path}: several DeepLabCut tables ({_listing(list(tables))}); keep one per file "
        "or name it 'df_with_missing'."
    )


def _read_csv(path: Path) -> pd.DataFrame:
    """A DeepLabCut CSV: 3 (4 with individuals) header rows, 1 or 3 index columns."""
    rows: list[tuple[int, list[str]]] = []  # (line number, cells) of non-blank rows
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    if not rows:
        raise LabelsError(f"{path}: empty file; {_EXPORT_HINT}.")
    known = set(MULTI_ANIMAL_LEVELS)
    levels: list[str] = []
    for _, row in rows[: len(MULTI_ANIMAL_LEVELS)]:
        if row[0].strip() not in known:
            break
        levels.append(row[0].strip())
    if tuple(levels) not in (SINGLE_ANIMAL_LEVELS, MULTI_ANIMAL_LEVELS):
        found = f"header rows {', '.join(levels)}" if levels else "no DeepLabCut header rows"
        raise LabelsError(
            f"{path}: {found}; a DeepLabCut CSV starts with the rows scorer, bodyparts, "
            f"coords (individuals before bodyparts for multi-animal); {_EXPORT_HINT}."
        )
    header = [row for _, row in rows[: len(levels)]]
    width = len(header[0])
    if any(len(row) != width for row in header):
        raise LabelsError(f"{path}: header rows of different lengths; {_EXPORT_HINT}.")
    coords = header[-1]
    n_index = 1
    while n_index < width and not coords[n_index].strip():
        n_index += 1
    if n_index == width:
        raise LabelsError(f"{path}: no bodyparts (no data columns); {_EXPORT_HINT}.")
    body = rows[len(levels) :]
    if body and _is_index_names(body[0][1], n_index):
        body = body[1:]
    values = np.full((len(body), width - n_index), np.nan)
    index = []
    for i, (line, row) in enumerate(body):
        if len(row) != width:
            raise LabelsError(
                f"{path}: line {line} has {len(row)} cells but the header {width}; "
                f"the file is cut or edited by hand; {_EXPORT_HINT}."
            )
        index.append("/".join(cell.strip() for cell in row[:n_index]))
        for j, cell in enumerate(row[n_index:]):
            text = cell.strip()
            if text:
                try:
                    values[i, j] = float(text)
                except ValueError:
                    raise LabelsError(
                        f"{path}: line {line}, column {n_index + j + 1}: '{text[:40]}' is not "
                        f"a coordinate; fix the cell or {_EXPORT_HINT}."
                    ) from None
    columns = pd.MultiIndex.from_arrays(
        [[cell.strip() for cell in row[n_index:]] for row in header], names=levels
    )
    return pd.DataFrame(values, index=pd.Index(index, dtype=object), columns=columns)


def _is_index_names(row: list[str], n_index: int) -> bool:
    """Whether a CSV row is pandas' row of index names (``frame,,,``), not a frame.

    pandas writes it after the header when the index is named. Unlike a frame without
    any label, its index cells are plain names, not image paths or frame numbers.
    """
    if any(cell.strip() for cell in row[n_index:]):
        return False
    cells = [cell.strip() for cell in row[:n_index]]
    plain = all(cell and not any(c in cell for c in "./\\") for cell in cells)
    return plain and not any(cell.isdigit() for cell in cells)


def _frame_to_joints(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """``(N, J, 2)`` joints, J names, N frame identifiers of a DeepLabCut table."""
    columns = frame.columns
    if len(columns) == 0:
        raise LabelsError(f"{path}: no bodyparts in the file; {_EXPORT_HINT}.")
    levels = {3: SINGLE_ANIMAL_LEVELS, 4: MULTI_ANIMAL_LEVELS}.get(columns.nlevels)
    given = tuple(columns.names)
    if levels is None or (given != levels and any(name is not None for name in given)):
        raise LabelsError(
            f"{path}: columns {'/'.join(map(str, given))} are not DeepLabCut's "
            f"scorer/bodyparts/coords (or scorer/individuals/bodyparts/coords); {_EXPORT_HINT}."
        )
    frame = frame.set_axis(columns.set_names(list(levels)), axis=1)
    scorers = list(dict.fromkeys(frame.columns.get_level_values("scorer")))
    if len(scorers) > 1:
        raise LabelsError(
            f"{path}: labels of {len(scorers)} scorers ({_listing(scorers)}); keep one scorer "
            "per file."
        )
    frame = frame.droplevel("scorer", axis=1)
    if "individuals" in levels:
        individuals = list(dict.fromkeys(frame.columns.get_level_values("individuals")))
        animals = [i for i in individuals if i != UNIQUE_BODYPARTS] or individuals
        if len(animals) != 1:
            raise LabelsError(
                f"{path}: {len(animals)} animals labelled ({_listing(animals)}) but this "
                "evaluation takes one animal; export one individual (e.g. "
                f"df.xs('{animals[0] if animals else 'mouse1'}', level='individuals', axis=1)) "
                "and evaluate that."
            )
        frame = frame.xs(animals[0], level="individuals", axis=1)
    if frame.columns.duplicated().any():
        raise LabelsError(f"{path}: a bodypart has duplicated columns; {_EXPORT_HINT}.")
    names = [str(n) for n in dict.fromkeys(frame.columns.get_level_values("bodyparts"))]
    if not names:
        raise LabelsError(f"{path}: no bodyparts in the file; {_EXPORT_HINT}.")
    if len(frame) == 0:
        raise LabelsError(f"{path}: no labelled frames in the file; {_EXPORT_HINT}.")
    present = set(frame.columns)
    lacking = [n for n in names if (n, "x") not in present or (n, "y") not in present]
    if lacking:
        raise LabelsError(
            f"{path}: bodyparts without x/y columns: {_listing(lacking)}; {_EXPORT_HINT}."
        )
    try:
        x = frame[[(name, "x") for name in names]].to_numpy(np.float64)
        y = frame[[(name, "y") for name in names]].to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise LabelsError(
            f"{path}: coordinates that are not numbers ({_one_line(exc)}); {_EXPORT_HINT}."
        ) from exc
    joints = np.stack([x, y], axis=-1)
    if np.isinf(joints).any():
        frame_i, joint_i, _ = np.argwhere(np.isinf(joints))[0]
        raise LabelsError(
            f"{path}: {int(np.isinf(joints).sum())} infinite coordinates (first: bodypart "
            f"'{names[joint_i]}', row {frame_i}); blank or fix them."
        )
    index = ["/".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in frame.index]
    return joints, names, index


# -- writing DeepLabCut labels ------------------------------------------------------------

#: DeepLabCut's folder of labelled images, first part of every image path.
LABELLED_DATA = "labeled-data"
#: Name of the predictions napari-deeplabcut opens for refinement (DeepLabCut's outliers).
MACHINE_LABELS = "machinelabels-iter0.h5"
#: The HDF5 key DeepLabCut writes its tables under.
HDF_KEY = "df_with_missing"


def image_name(frame: int, n_frames: int) -> str:
    """DeepLabCut's name of an extracted frame: ``img`` + the frame number, zero-padded.

    Padded to ``ceil(log10(n_frames))`` digits as DeepLabCut pads it (``img0042.png`` in
    a video of 2330 frames), at least one digit.
    """
    digits = max(1, int(np.ceil(np.log10(max(n_frames, 2)))))
    return f"img{int(frame):0{digits}d}.png"


def image_path(video: str | Path, frame: int, n_frames: int) -> str:
    """``labeled-data/<video stem>/imgNNNN.png``: a frame's row in DeepLabCut labels."""
    return f"{LABELLED_DATA}/{Path(video).stem}/{image_name(frame, n_frames)}"


def frame_numbers(frames: list[str], source: str | Path | None = None) -> np.ndarray:
    """Frame numbers of labelled images named as DeepLabCut names them (``img0042.png``).

    Parameters
    ----------
    frames : list of str
        Image paths of labels rows (:attr:`Labels.frames`), or plain frame numbers.
    source : str or Path, optional
        The labels file, named in the error message.

    Returns
    -------
    ndarray
        ``(N,)`` int frame numbers: the digits that end each image's file stem.

    Raises
    ------
    LabelsError
        If an image name ends in no number, naming it.
    """
    numbers = []
    for frame in frames:
        stem = Path(str(frame).replace("\\", "/")).stem
        digits = len(stem) - len(stem.rstrip("0123456789"))
        if digits == 0:
            raise LabelsError(
                f"{source or 'labels'}: image {frame!r} has no frame number at the end of its "
                "name; name labelled frames as DeepLabCut extracts them (img0042.png for frame "
                "42), or extract keypoints on the folder of the labelled images."
            )
        numbers.append(int(stem[-digits:]))
    return np.asarray(numbers, dtype=np.int64)


def labels_dataframe(
    joints: np.ndarray,
    names: list[str],
    images: list[str],
    scorer: str,
    likelihood: np.ndarray | None = None,
) -> pd.DataFrame:
    """Labelled or predicted joints as a single-animal DeepLabCut table.

    Parameters
    ----------
    joints : ndarray
        ``(N, J, 2)`` (x, y) px; NaN where not labelled.
    names : list of str
        The J bodyparts.
    images : list of str
        ``labeled-data/<video>/<image>`` of each row; rows are indexed as DeepLabCut >= 2.2
        indexes them (a three-level index of the path's parts).
    scorer : str
        The scorer column level.
    likelihood : ndarray, optional
        ``(N, J)`` in [0, 1]: adds the ``likelihood`` coordinate of prediction files.

    Returns
    -------
    DataFrame
        Columns ``(scorer, bodyparts, coords)``, coords ``x, y`` (and ``likelihood``).
    """
    joints = np.asarray(joints, np.float64)
    parts = [joints[..., 0], joints[..., 1]]
    coords = ["x", "y"]
    if likelihood is not None:
        values = np.asarray(likelihood, np.float64).copy()
        values[~np.isfinite(joints).all(axis=-1)] = np.nan
        parts.append(values)
        coords.append("likelihood")
    table = np.stack(parts, axis=-1).reshape(len(joints), -1)
    columns = pd.MultiIndex.from_product([[scorer], names, coords], names=SINGLE_ANIMAL_LEVELS)
    split = [tuple(str(image).replace("\\", "/").split("/")) for image in images]
    index: pd.Index = (
        pd.MultiIndex.from_tuples(split)
        if split and all(len(parts) == 3 for parts in split)
        else pd.Index([str(image) for image in images], dtype=object)
    )
    return pd.DataFrame(table, index=index, columns=columns)


def write_labels(
    path: str | Path,
    joints: np.ndarray,
    names: list[str],
    images: list[str],
    scorer: str,
    *,
    likelihood: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a DeepLabCut labels (or predictions) file atomically.

    Parameters
    ----------
    path : str or Path
        ``.h5`` (pandas HDF5, one table under ``df_with_missing``, as DeepLabCut and
        napari-deeplabcut read it) or ``.csv``; its folder is made if needed.
    joints, names, images, scorer, likelihood
        See :func:`labels_dataframe`.
    overwrite : bool
        Replace an existing file (else :class:`~bkind_model.io.outputs.ExistingFileError`).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    LabelsError
        For another suffix, or an existing file without ``overwrite``.
    WriteError
        When the folder cannot be written (read-only ...); nothing is replaced.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in HDF_SUFFIXES[:1] + CSV_SUFFIXES:
        raise LabelsError(f"{path}: DeepLabCut labels are written as .h5 or .csv.")
    check_output(path, overwrite=overwrite, option="overwrite=True (--overwrite)")
    frame = labels_dataframe(joints, names, images, scorer, likelihood)
    ensure_folder(path.parent, "labels folder")
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp)
        else:
            write_dlc_table(frame, tmp)
    return path


def write_dlc_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a DeepLabCut table (labels or predictions) to HDF5 as every reader reads it.

    pandas' "fixed" format under :data:`HDF_KEY`, as DeepLabCut writes its
    ``CollectedData``: pandas 2 (which DeepLabCut 3.0 installs) and pandas 3 both read it,
    whereas a "table" file written by pandas 3 fails in pandas 2 (pandas 3 no longer writes
    the ``pandas_version`` attribute by which pandas 2 finds the table's columns). Its
    attributes are plain strings and numbers: no pickle (:func:`refuse_pickled_code`).

    Parameters
    ----------
    frame : DataFrame
        Float columns ``(scorer, bodyparts, coords)`` (object columns would be pickled).
    path : str or Path
        The ``.h5`` file, replaced whole (callers write into an atomic temporary file).
    """
    frame.to_hdf(path, key=HDF_KEY, mode="w", format="fixed")


def write_collected_data(
    folder: str | Path, labels: Labels, scorer: str, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write hand labels as DeepLabCut does: ``CollectedData_<scorer>.h5`` and ``.csv``.

    Parameters
    ----------
    folder : str or Path
        The video's ``labeled-data/<video stem>`` folder.
    labels : Labels
        The labels; :attr:`Labels.frames` are the rows' image paths.
    scorer : str
        The labeller's name (DeepLabCut's ``scorer`` of ``config.yaml``).
    overwrite : bool
        Replace existing files (both are checked before either is written).

    Returns
    -------
    tuple of Path
        The ``.h5`` and the ``.csv``.
    """
    base = Path(folder) / f"CollectedData_{scorer}"
    targets = (base.with_suffix(".h5"), base.with_suffix(".csv"))
    for target in targets:
        check_output(target, overwrite=overwrite, option="overwrite=True (--overwrite)")
    for target in targets:
        write_labels(target, labels.joints, labels.names, labels.frames, scorer, overwrite=True)
    return targets


def write_images(
    video: str | Path, frames: np.ndarray, folder: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """Save frames of a video as DeepLabCut's labelled images (``img0042.png`` ...).

    Parameters
    ----------
    video : str or Path
        The video file or image folder.
    frames : ndarray
        ``(N,)`` frame numbers.
    folder : str or Path
        Where the PNGs go (made if needed), usually ``labeled-data/<video stem>``.
    overwrite : bool
        Replace an existing PNG of the same name that holds another image. Without it
        such a PNG raises :class:`~bkind_model.io.outputs.ExistingFileError` before any
        PNG is written. A PNG that already holds the frame is left as it is.

    Returns
    -------
    list of Path
        The PNG of each frame.
    """
    folder = ensure_folder(folder, "labelled images folder")
    with open_video(video) as source:
        targets = [
            (int(frame), folder / image_name(int(frame), source.n_frames))
            for frame in np.asarray(frames, np.int64)
        ]
        kept = {t for frame, t in targets if t.exists() and _holds(t, source[frame])}
        for _, target in targets:
            if target not in kept:  # checked for all before the first is written
                check_output(target, overwrite=overwrite)
        for frame, target in targets:
            if target not in kept:
                with atomic_path(target, suffix=".png") as tmp:
                    Image.fromarray(np.asarray(source[frame])).save(tmp, format="PNG")
    return [target for _, target in targets]


def _holds(png: Path, image: np.ndarray) -> bool:
    """Whether the file ``png`` is an image with exactly the pixels of ``(H, W[, 3])`` ``image``."""
    try:
        with Image.open(png) as opened:
            found = np.asarray(opened)
    except (OSError, ValueError):  # unreadable or not an image: not the frame
        return False
    return found.shape == np.shape(image) and bool(np.array_equal(found, image))


def merge_labels(base: Labels, update: Labels) -> Labels:
    """``base`` with the rows of ``update`` added or replacing those of the same image.

    In a row of both, every bodypart ``update`` names takes ``update``'s value (NaN
    included: a deleted label); bodyparts only ``update`` names are added (NaN in the
    other rows). The body length is computed again.

    Raises
    ------
    LabelsError
        As :func:`labels_from_joints`.
    """
    names = list(base.names) + [n for n in update.names if n not in base.names]
    frames = list(base.frames) + [f for f in update.frames if f not in base.frames]
    joints = np.full((len(frames), len(names), 2), np.nan)
    for labels in (base, update):
        rows = [frames.index(f) for f in labels.frames]
        columns = [names.index(n) for n in labels.names]
        joints[np.ix_(rows, columns)] = labels.joints
    return labels_from_joints(joints, names, frames)
