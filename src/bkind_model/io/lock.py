"""One process per run folder: an advisory lock file naming its holder.

Two trainings writing the same ``checkpoint.pt`` would overwrite each other's work. The
lock is an ``fcntl`` lock on ``<run>/.lock``, released by the operating system when the
process ends (even when killed), so a stale lock never blocks a new run; the file holds
the holder's process id, host and start time for the message the next process shows.
Within one process the lock is shared (counted), so a program may reopen its own run.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from bkind_model.errors import RunLockedError

#: Locks this process holds: resolved lock file -> [file descriptor, users].
_HELD: dict[Path, list[int]] = {}
_GUARD = threading.Lock()


class RunLock:
    """Hold ``<folder>/.lock`` until :meth:`release` (or the process ends).

    Parameters
    ----------
    folder : str or Path
        The run folder (it must exist).
    what : str
        What holds it, for the other process's message (``"bkind train"``).
    name : str
        The lock file's name in ``folder`` (one per output file: ``".results.h5.lock"``).

    Raises
    ------
    RunLockedError
        When another process holds the lock: names it and says what to do.
    """

    def __init__(self, folder: str | Path, what: str = "bkind train", name: str = ".lock") -> None:
        self.path = (Path(folder) / name).resolve()
        self._held = False
        with _GUARD:
            if self.path in _HELD:
                _HELD[self.path][1] += 1
                self._held = True
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if name == ".lock":
                    used = f"{self.path.parent}: this run folder"
                else:  # ".<output>.lock" guards <output>
                    used = f"{self.path.parent / name[1:].removesuffix('.lock')}: this output"
                raise RunLockedError(
                    f"{used} is in use by {holder}. Wait for it to finish (or stop it), or "
                    "write elsewhere (--out)."
                ) from None
            os.ftruncate(fd, 0)
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            holder = f"{what} (pid {os.getpid()} on {socket.gethostname()}, since {started})"
            os.pwrite(fd, f"{holder}\n".encode(), 0)
            _HELD[self.path] = [fd, 1]
            self._held = True

    def release(self) -> None:
        """Let another process use the folder once this process's last user releases it."""
        with _GUARD:
            if not self._held:
                return
            self._held = False
            entry = _HELD[self.path]
            entry[1] -= 1
            if entry[1] == 0:
                os.close(entry[0])  # closing drops the lock
                del _HELD[self.path]

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 500, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"
