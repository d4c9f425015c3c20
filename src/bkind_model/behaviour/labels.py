"""Behaviour names and labelled frame intervals, and the two CSV files that hold them.

Labels tie to a video by its file name (:func:`video_key`), so a labels file can hold
several videos and a results file of another video is recognised. An interval is a
behaviour from its first to its last frame, both included; one frame has at most one
behaviour; frames in no interval are unlabelled (not used for training).

Files (UTF-8 CSV with a header, written atomically; an existing file is replaced only when
asked):

- intervals: ``video,behaviour,start_frame,end_frame``, one row per interval;
- frame x behaviour: ``video,frame,<behaviour>...`` with 0/1 per behaviour (a row of
  zeros is an unlabelled frame), optionally followed by ``<behaviour>_probability``
  columns (an ethogram's probabilities, ignored when read as labels). Predictions exported
  this way read back as labels, to be corrected and trained on again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bkind_model.behaviour import BehaviourError
from bkind_model.io.atomic import atomic_path, ensure_folder
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult

INTERVAL_COLUMNS = ("video", "behaviour", "start_frame", "end_frame")
VIDEO, FRAME = "video", "frame"
PROBABILITY_SUFFIX = "_probability"
UNLABELLED = -1
#: Largest frame number a labels file may name (about two years of video at 30 fps).
MAX_FRAME = 2**31 - 1


def video_key(result: KeypointResult) -> str:
    """The name labels use for a results file's video: the video's file name.

    The results file's own name when no video is recorded.
    """
    video = result.metadata.get("video_path")
    if video:
        return Path(str(video)).name
    return Path(result.path).name if result.path is not None else "video"


def check_names(names: Iterable[str], where: str = "behaviour names") -> list[str]:
    """Behaviour names stripped, checked unique, non-empty and not a column of the files.

    Raises
    ------
    BehaviourError
        Naming the offending name and ``where`` it came from.
    """
    checked = [str(name).strip() for name in names]
    reserved = {VIDEO, FRAME, *INTERVAL_COLUMNS}
    for name in checked:
        if not name or name in reserved or name.endswith(PROBABILITY_SUFFIX):
            raise BehaviourError(
                f"{where}: {name!r} cannot name a behaviour (empty, a column name or ending "
                f"in {PROBABILITY_SUFFIX!r}); rename it."
            )
    if len(set(checked)) != len(checked):
        twice = sorted({n for n in checked if checked.count(n) > 1})
        raise BehaviourError(f"{where}: {', '.join(twice)} named twice; give each one name.")
    return checked


@dataclass(frozen=True)
class Interval:
    """One labelled bout.

    Attributes
    ----------
    video : str
        The video's file name (:func:`video_key`).
    behaviour : str
        One of the labels' names.
    start, end : int
        First and last frame of the bout, both included.
    """

    video: str
    behaviour: str
    start: int
    end: int


@dataclass
class BehaviourLabels:
    """Behaviour names and the intervals labelled with them.

    Attributes
    ----------
    names : list of str
        The behaviours, in the order of the ethogram's columns.
    intervals : list of Interval
        Labelled bouts, non-overlapping within a video.
    source : Path or None
        The file they were read from (named in messages).
    """

    names: list[str]
    intervals: list[Interval] = field(default_factory=list)
    source: Path | None = None

    def __post_init__(self) -> None:
        self.names = check_names(self.names, str(self.source or "behaviour names"))

    @property
    def where(self) -> str:
        """How messages name these labels: their file, or ``labels``."""
        return str(self.source) if self.source is not None else "labels"

    def videos(self) -> list[str]:
        """The videos with at least one interval, in order of first appearance."""
        return list(dict.fromkeys(i.video for i in self.intervals))

    def frame_counts(self) -> dict[str, int]:
        """Labelled frames per behaviour, over every video (0 for one never labelled)."""
        counts = dict.fromkeys(self.names, 0)
        for interval in self.intervals:
            counts[interval.behaviour] += interval.end - interval.start + 1
        return counts

    def codes(self, video: str, n_frames: int, results: Path | None = None) -> np.ndarray:
        """Behaviour per frame of one video: ``(T,)`` int16 indices into :attr:`names`.

        Parameters
        ----------
        video : str
            The video's file name.
        n_frames : int
            Its number of frames T.
        results : Path, optional
            The results file of that video, named when an interval does not fit.

        Returns
        -------
        ndarray
            :data:`UNLABELLED` (-1) for frames in no interval.

        Raises
        ------
        BehaviourError
            When an interval lies outside the video's frames ``0 .. T - 1``.
        """
        codes = np.full(n_frames, UNLABELLED, dtype=np.int16)
        for interval in self.intervals:
            if interval.video != video:
                continue
            if interval.start < 0 or interval.end >= n_frames:
                raise BehaviourError(
                    f"{self.where}: {interval.behaviour} frames {interval.start}-{interval.end} "
                    f"of {video} lie outside its {n_frames} frames (0-{n_frames - 1}"
                    f"{f', {results}' if results else ''}); fix the interval or label the "
                    "results of the right video."
                )
            codes[interval.start : interval.end + 1] = self.names.index(interval.behaviour)
        return codes

    def label(self, video: str, behaviour: str | None, start: int, end: int) -> None:
        """Label frames ``start .. end`` (both included) of ``video`` with ``behaviour``.

        Whatever those frames had before is replaced; ``behaviour`` None unlabels them.

        Raises
        ------
        BehaviourError
            For a behaviour not in :attr:`names`, or ``end < start`` or a negative frame.
        """
        if behaviour is not None and behaviour not in self.names:
            raise BehaviourError(
                f"{self.where}: no behaviour named {behaviour!r}; add it first "
                f"(there are: {', '.join(self.names) or 'none'})."
            )
        start, end = int(start), int(end)
        if start < 0 or end < start:
            raise BehaviourError(
                f"{self.where}: frames {start}-{end} are no interval; the first frame must be "
                "0 or more and the last one not before it."
            )
        # Interval arithmetic, not an array of frames: a frame number is not a size.
        kept = []
        for i in (i for i in self.intervals if i.video == video):
            if i.start < start:
                kept.append(Interval(video, i.behaviour, i.start, min(i.end, start - 1)))
            if i.end > end:
                kept.append(Interval(video, i.behaviour, max(i.start, end + 1), i.end))
        if behaviour is not None:
            kept.append(Interval(video, behaviour, start, end))
        merged: list[Interval] = []
        for i in sorted(kept, key=lambda i: i.start):
            last = merged[-1] if merged else None
            if last is not None and last.behaviour == i.behaviour and i.start <= last.end + 1:
                merged[-1] = Interval(video, i.behaviour, last.start, max(last.end, i.end))
            else:
                merged.append(i)
        self.intervals = [i for i in self.intervals if i.video != video] + merged

    def add_name(self, name: str) -> None:
        """Add a behaviour (the last column)."""
        self.names = check_names([*self.names, name], self.where)

    def rename(self, old: str, new: str) -> None:
        """Rename a behaviour everywhere it is labelled."""
        self.names = check_names([new if n == old else n for n in self.names], self.where)
        self.intervals = [
            Interval(i.video, new, i.start, i.end) if i.behaviour == old else i
            for i in self.intervals
        ]

    def remove_name(self, name: str) -> None:
        """Remove a behaviour and every interval labelled with it."""
        self.names = [n for n in self.names if n != name]
        self.intervals = [i for i in self.intervals if i.behaviour != name]


def intervals_from_codes(video: str, codes: np.ndarray, names: list[str]) -> list[Interval]:
    """Runs of equal behaviour in ``(T,)`` codes as intervals (unlabelled runs left out)."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:] - 1, len(codes) - 1]
    return [
        Interval(video, names[int(codes[s])], int(s), int(e))
        for s, e in zip(starts, ends, strict=True)
        if codes[s] != UNLABELLED
    ]


def labels_from_codes(
    names: list[str], codes: Mapping[str, np.ndarray], source: Path | None = None
) -> BehaviourLabels:
    """Labels from per-frame codes ``{video: (T,) indices into names, -1 unlabelled}``."""
    intervals = [i for video, c in codes.items() for i in intervals_from_codes(video, c, names)]
    return BehaviourLabels(list(names), intervals, source)


def write_table(path: str | Path, table: pd.DataFrame, overwrite: bool) -> Path:
    """Write a CSV atomically; an existing file only when ``overwrite`` (else an error).

    Its folder is made if missing and checked writable first (a folder under a file or a
    read-only one is a :class:`~bkind_model.errors.WriteError` naming it).
    """
    path = Path(path)
    check_output(path, overwrite=overwrite, option="overwrite=True (--overwrite)")
    ensure_folder(path.parent)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def write_intervals(path: str | Path, labels: BehaviourLabels, overwrite: bool = False) -> Path:
    """Write the intervals CSV (``video,behaviour,start_frame,end_frame``).

    Rows go behaviour by behaviour in the order of ``labels.names``, so reading the file
    gives the names in that order (a behaviour never labelled has no row).

    Raises
    ------
    ExistingFileError
        When ``path`` exists and ``overwrite`` is False (nothing is written).
    WriteError
        When the folder cannot be written (read-only, full); the previous file is intact.
    """
    order = sorted(labels.intervals, key=lambda i: labels.names.index(i.behaviour))
    rows = [(i.video, i.behaviour, i.start, i.end) for i in order]
    return write_table(path, pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS)), overwrite)


def frame_table(
    names: list[str],
    codes: Mapping[str, np.ndarray],
    probabilities: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The frame x behaviour table of per-frame codes (and probabilities) of videos.

    Parameters
    ----------
    names : list of str
        The behaviours (columns).
    codes : mapping
        ``{video: (T,) codes}``, -1 for frames with no behaviour (a row of zeros).
    probabilities : mapping, optional
        ``{video: (T, B) probabilities}``, written as ``<name>_probability`` columns.
    """
    parts = []
    for video, video_codes in codes.items():
        video_codes = np.asarray(video_codes)
        part = {VIDEO: [video] * len(video_codes), FRAME: np.arange(len(video_codes))}
        for b, name in enumerate(names):
            part[name] = (video_codes == b).astype(np.uint8)
        if probabilities is not None:
            for b, name in enumerate(names):
                part[name + PROBABILITY_SUFFIX] = np.round(probabilities[video][:, b], 4)
        parts.append(pd.DataFrame(part))
    columns = [VIDEO, FRAME, *names]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def write_frames(
    path: str | Path,
    labels: BehaviourLabels,
    n_frames: Mapping[str, int],
    overwrite: bool = False,
) -> Path:
    """Write labels as the frame x behaviour CSV (0/1; rows of zeros are unlabelled).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    labels : BehaviourLabels
        What to write.
    n_frames : mapping
        ``{video: T}``: every frame of these videos gets a row.
    overwrite : bool
        Replace an existing file (else :class:`~bkind_model.io.outputs.ExistingFileError`).
    """
    codes = {video: labels.codes(video, n) for video, n in n_frames.items()}
    return write_table(path, frame_table(labels.names, codes), overwrite)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV of ours, with a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise BehaviourError(f"{path}: file not found; give an existing labels/ethogram CSV.")
    try:
        return pd.read_csv(path, dtype={VIDEO: str})
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BehaviourError(
            f"{path}: cannot read as CSV ({str(exc).splitlines()[0][:200]}); write it again "
            "from the Behaviour widget or `bkind behaviour`."
        ) from exc


def frame_codes(table: pd.DataFrame, path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Behaviour names and ``{video: (T,) codes}`` of a frame x behaviour table.

    Raises
    ------
    BehaviourError
        For non 0/1 values, a frame with two behaviours, or frames not numbered ``0 .. T-1``.
    """
    names = check_names(
        [
            c
            for c in table.columns
            if c not in (VIDEO, FRAME) and not c.endswith(PROBABILITY_SUFFIX)
        ],
        str(path),
    )
    values = table[names].to_numpy()
    if not np.isin(values, (0, 1)).all():
        raise BehaviourError(f"{path}: behaviour columns must hold 0 or 1; fix the file.")
    if (values.sum(axis=1) > 1).any():
        row = int(np.flatnonzero(values.sum(axis=1) > 1)[0])
        raise BehaviourError(
            f"{path}: frame {table[FRAME].iloc[row]} of {table[VIDEO].iloc[row]} has two "
            "behaviours; keep one 1 per row."
        )
    codes = np.where(values.any(axis=1), values.argmax(axis=1), UNLABELLED).astype(np.int16)
    _text_column(table, VIDEO, path)  # a row without a video would be lost
    per_video = {}
    for video, rows in table.groupby(VIDEO, sort=False).indices.items():
        frames = table[FRAME].to_numpy()[rows]
        if not np.array_equal(frames, np.arange(len(rows))):
            raise BehaviourError(
                f"{path}: the frames of {video} are not numbered 0, 1, 2 ... in order; "
                "write one row per frame."
            )
        per_video[str(video)] = codes[rows]
    return names, per_video


def _text_column(table: pd.DataFrame, column: str, path: Path) -> list[str]:
    """A column of names as stripped strings; an empty cell is an error naming its line."""
    cells = table[column]
    empty = cells.isna().to_numpy() | (cells.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise BehaviourError(
            f"{path}: line {row + 2} has no {column}; fill it in (every row names one)."
        )
    return [str(cell).strip() for cell in cells]


def read_labels(path: str | Path) -> BehaviourLabels:
    """Read labels from an intervals CSV or a frame x behaviour CSV (an exported ethogram).

    Where intervals of a file overlap, the later row wins.

    Raises
    ------
    BehaviourError
        For a missing or unreadable file, other columns, an empty video or behaviour, or
        frame numbers that are not whole numbers from 0 to :data:`MAX_FRAME` (naming the
        line).
    """
    path = Path(path)
    table = read_table(path)
    if set(INTERVAL_COLUMNS) <= set(table.columns):
        videos = _text_column(table, VIDEO, path)
        behaviours = _text_column(table, "behaviour", path)
        frames = table[["start_frame", "end_frame"]].apply(pd.to_numeric, errors="coerce")
        values = frames.to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            whole = (values == np.round(values)) & (values >= 0) & (values <= MAX_FRAME)
        bad = ~whole.all(axis=1) | (values[:, 1] < values[:, 0])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BehaviourError(
                f"{path}: line {row + 2}: {behaviours[row]} frames {table['start_frame'].iloc[row]}"
                f"-{table['end_frame'].iloc[row]} of {videos[row]} are no interval; write whole "
                f"frame numbers, 0 <= start_frame <= end_frame <= {MAX_FRAME}."
            )
        labels = BehaviourLabels(list(dict.fromkeys(behaviours)), source=path)
        for video, behaviour, (start, end) in zip(
            videos, behaviours, values.astype(np.int64), strict=True
        ):
            labels.label(video, behaviour, int(start), int(end))
        return labels
    if {VIDEO, FRAME} <= set(table.columns):
        names, codes = frame_codes(table, path)
        return labels_from_codes(names, codes, path)
    raise BehaviourError(
        f"{path}: neither an intervals CSV ({','.join(INTERVAL_COLUMNS)}) nor a frame x "
        f"behaviour CSV ({VIDEO},{FRAME},<behaviour>...); export it again."
    )
