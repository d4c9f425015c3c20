"""One process per run folder: an advisory lock file naming its holder.

Two trainings writing the same ``checkpoint.pt`` would overwrite each other's work. The
lock is an ``fcntl`` lock on ``<run>/.lock``, released by the operating system when the
process ends (even when killed), so a stale lock never blocks a new run; the file holds
the holder's process id, host and start time for the message the next process shows.
Within one process the lock is shared (counted), so a program may reopen its own run.

A finished command leaves no lock file behind: the holder removes it while it still holds
the lock, and a process that locked a file checks that it is still the one at the path
(the same inode): if the holder removed it meanwhile, it opens the new one and tries
again, so two processes never both hold a lock of the same path. Only a killed process
leaves its (unlocked, harmless) file; the next run takes it over and removes it.
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
            fd = _lock(self.path)
            if fd is None:
                if name == ".lock":
                    used = f"{self.path.parent}: this run folder"
                else:  # ".<output>.lock" guards <output>
                    used = f"{self.path.parent / name[1:].removesuffix('.lock')}: this output"
                raise RunLockedError(
                    f"{used} is in use by {_holder(self.path)}. Wait for it to finish (or "
                    "stop it), or write elsewhere (--out)."
                )
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
                self.path.unlink(missing_ok=True)  # still held: no one else has locked it
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


def _lock(path: Path) -> int | None:
    """Lock the file at ``path`` (made if missing): its descriptor, or None if held.

    A file locked after its holder removed it is no longer the one at ``path``: it is
    closed and the file now there is locked instead.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        opened = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (
            opened.st_dev,
            opened.st_ino,
        ):
            return fd
        os.close(fd)  # removed by the holder that just released it: lock the new one


def _holder(path: Path) -> str:
    """What the lock file at ``path`` says about the process that holds it."""
    try:
        text = path.read_text(errors="replace")[:500].strip()
    except OSError:
        text = ""
    return text or "another process"
