"""The one rule for every file a command writes: never an input, never replaced unasked.

Every command that writes checks each of its outputs with :func:`check_output` before the
work starts: an output that is one of the command's own inputs (the video, the
checkpoint, the calibration, labels, results: compared as files, so another spelling,
a symbolic link or a hard link of the input is caught too) is refused whatever the
options say, and an existing file is replaced only when the user asked for it
(``--overwrite`` on the command line, ``overwrite=True`` in Python, a tick in a widget).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bkind_model.errors import PathError

#: How a user asks to replace existing files on the command line.
OVERWRITE_OPTION = "--overwrite"


class ExistingFileError(PathError):
    """A file would be replaced although replacing it was not asked for."""


class OutputIsInputError(PathError):
    """An output path is one of the same command's inputs, which writing would destroy."""


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (same inode when both exist, else same place).

    Parameters
    ----------
    a, b : str or Path
        The paths; relative ones are taken from the current folder.
    """
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they point
        return a.resolve() == b.resolve()


def check_output(
    out: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    overwrite: bool = False,
    option: str = OVERWRITE_OPTION,
) -> Path:
    """Refuse to write ``out`` where it would destroy an input or replace a file unasked.

    Call it for every output before any work starts, so a refusal costs nothing.

    Parameters
    ----------
    out : str or Path
        The file about to be written.
    inputs : iterable of str, Path or None
        Every file the same command reads (None entries are skipped; a run folder stands
        for its ``checkpoint.pt`` only when the caller passes that file).
    overwrite : bool
        Whether replacing an existing ``out`` was asked for. It never allows writing
        over an input.
    option : str
        How the user asks for it, named in the message (``--overwrite``,
        ``overwrite=True``, ``a tick in 'Replace existing files'``).

    Returns
    -------
    Path
        ``out`` as a Path.

    Raises
    ------
    OutputIsInputError
        When ``out`` is one of ``inputs``.
    ExistingFileError
        When ``out`` is a folder, or exists and ``overwrite`` is False.
    """
    out = Path(out)
    for source in inputs:
        if source is not None and same_file(out, source):
            raise OutputIsInputError(
                out,
                "is an input of this command: writing there would destroy it.",
                "Choose another output file (nothing was written).",
            )
    if out.is_dir():
        raise ExistingFileError(
            out, "is a folder, not a file.", "Name an output file (nothing was written)."
        )
    if out.exists() and not overwrite:
        raise ExistingFileError(
            out,
            "already exists and would be replaced.",
            f"Pass {option} to replace it, or choose another name (nothing was written).",
        )
    return out
