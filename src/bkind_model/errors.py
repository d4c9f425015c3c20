"""Exceptions raised by ``bkind_model``.

Every error a user can cause names the file involved and says what to do about it.
Catch :class:`BKindError` to handle all of them; the subclasses tell the cases apart.
"""

from __future__ import annotations

from pathlib import Path


class BKindError(Exception):
    """Base class of every error ``bkind_model`` raises on purpose."""


class PathError(BKindError):
    """An error about one file or folder: what is wrong there, and the fix.

    Parameters
    ----------
    path : str or Path
        The file or folder concerned.
    problem : str
        What is wrong, in one sentence.
    fix : str
        What the user can do about it.
    """

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(self.message())

    def message(self) -> str:
        """The one line shown to the user."""
        return f"{self.path}: {self.problem} {self.fix}"


class VideoError(PathError):
    """A video file or image folder cannot be read."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The video file or image folder does not exist."""


class VideoPermissionError(VideoError, PermissionError):
    """The video file or image folder cannot be read with the current permissions."""


class NotAVideoError(VideoError):
    """The file is not a video ffmpeg can decode (e.g. a text file named ``.mp4``)."""


class EmptyVideoError(VideoError):
    """The video or image folder holds no frames."""


class TruncatedVideoError(VideoError):
    """The video file is cut short or damaged: some frames cannot be decoded."""


class InconsistentFramesError(VideoError):
    """Images in a folder differ in size, so they do not form one video."""


class DecoderTimeoutError(VideoError, TimeoutError):
    """ffmpeg stopped producing output and was killed."""


class CheckpointError(BKindError):
    """A checkpoint file is corrupt, foreign or incompatible with the requested run."""


class ConfigError(BKindError, ValueError):
    """A configuration value is invalid."""


class WriteError(PathError, OSError):
    """A file could not be written; the previous file at that path is intact."""

    def message(self) -> str:
        """``"<problem> at <path>: <fix>"`` (``disk full at results.h5: free 3 MB ...``)."""
        return f"{self.problem} at {self.path}: {self.fix}"


class DiskFullError(WriteError):
    """The disk (or quota) ran out while writing; nothing was replaced."""


class RunLockedError(BKindError):
    """Another process is using the run folder."""


class MissingDependencyError(BKindError, ImportError):
    """An optional part is not installed; the message says which extra to install."""


class RefusedByRankZero(BKindError):
    """Rank 0 of a distributed run refused it (the message says why); the others stop too."""
