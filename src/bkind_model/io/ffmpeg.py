"""Run the ffmpeg binary of imageio-ffmpeg as a subprocess, with a stall timeout.

Everything that talks to ffmpeg goes through :class:`FFmpegProcess`, so that

* a process that stops producing output for :data:`TIMEOUT_S` seconds is killed and
  :class:`~bkind_model.errors.DecoderTimeoutError` is raised (never a hang);
* a failing ffmpeg is reported as one of the specific errors of :mod:`bkind_model.errors`
  naming the file and what to do (never a bare ffmpeg message or traceback).

The stall timeout waits on ffmpeg's output pipe with :func:`select.select`, which works on
POSIX systems (Linux, macOS) only.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import select
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import imageio_ffmpeg

from bkind_model.errors import (
    DecoderTimeoutError,
    EmptyVideoError,
    NotAVideoError,
    TruncatedVideoError,
    VideoError,
    VideoNotFoundError,
    VideoPermissionError,
)

#: Seconds ffmpeg may go without writing any output before it is killed.
TIMEOUT_S: float = 30.0

_READ_BLOCK = 1 << 20
_PIPE_BYTES = 1 << 20

# (pattern in ffmpeg's stderr, error class, problem, fix), first match wins.
_STDERR_ERRORS: tuple[tuple[re.Pattern[str], type[VideoError], str, str], ...] = (
    (
        re.compile(r"No such file or directory"),
        VideoNotFoundError,
        "the file does not exist.",
        "Check the path.",
    ),
    (
        re.compile(r"Permission denied"),
        VideoPermissionError,
        "the file cannot be read with the current permissions.",
        "Make it readable (e.g. chmod u+r) or copy it somewhere you can read.",
    ),
    (
        re.compile(r"matches no streams|does not contain any stream"),
        EmptyVideoError,
        "the file has no video stream with frames.",
        "Pick the video file itself (not an audio or subtitle file).",
    ),
    (
        re.compile(r"Error opening input: End of file"),
        EmptyVideoError,
        "the file ends before any video data.",
        "Check that the recording worked and the file was copied completely.",
    ),
    (
        re.compile(r"partial file|ended prematurely|Truncating packet|Packet corrupt"),
        TruncatedVideoError,
        "the file is cut short or damaged.",
        "Copy it again from its source; an interrupted recording can sometimes be "
        "repaired with a tool such as untrunc.",
    ),
    (
        re.compile(r"Invalid data found|moov atom not found|could not find codec|Unknown format"),
        NotAVideoError,
        "ffmpeg cannot read this file as a video.",
        "Check that it is a video (.mp4, .avi, .mov, .mkv ...) and not damaged.",
    ),
)


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def error_from_stderr(path: str | Path, stderr: str) -> VideoError:
    """Translate ffmpeg's error output into the matching :class:`VideoError`.

    Parameters
    ----------
    path : str or Path
        The file ffmpeg was reading.
    stderr : str
        What ffmpeg wrote to its standard error.

    Returns
    -------
    VideoError
        A specific subclass when the message is recognised, else a plain
        :class:`VideoError` quoting ffmpeg's last lines.
    """
    for pattern, error_class, problem, fix in _STDERR_ERRORS:
        if pattern.search(stderr):
            return error_class(path, problem, fix)
    last = " | ".join(line.strip() for line in stderr.strip().splitlines()[-3:])
    return VideoError(
        path,
        f"ffmpeg failed to read the file ({last or 'no message'}).",
        "Check that the file is a complete video; re-encoding it with ffmpeg may help.",
    )


class FFmpegProcess:
    """One running ffmpeg whose standard output is read by the caller.

    Standard error goes to an anonymous temporary file, so a chatty ffmpeg can never
    block on a full pipe. Every read waits at most :data:`TIMEOUT_S` seconds for data
    (plus ``startup_s`` before the first byte). Not thread-safe: one thread reads a
    process at a time.

    Parameters
    ----------
    args : sequence of str
        ffmpeg arguments (without the executable). ``-nostdin -hide_banner -nostats``
        are prepended.
    path : str or Path
        The media file, named in errors.
    startup_s : float
        Extra seconds allowed before the first output, for work ffmpeg does silently
        (decoding from a keyframe up to a seek target).
    """

    def __init__(self, args: Sequence[str], path: str | Path, *, startup_s: float = 0.0) -> None:
        self.path = Path(path)
        self._grace = startup_s
        self._stderr = tempfile.TemporaryFile()
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", *args]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        _enlarge_pipe(self._proc.stdout)

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` from ffmpeg's output.

        Parameters
        ----------
        buffer : memoryview
            Writable, C-contiguous bytes to fill.

        Returns
        -------
        int
            Bytes written: ``len(buffer)`` unless ffmpeg's output ended first.

        Raises
        ------
        DecoderTimeoutError
            ffmpeg wrote nothing for :data:`TIMEOUT_S` seconds; it has been killed.
        """
        buffer = buffer.cast("B")
        stdout = self._proc.stdout
        assert stdout is not None
        filled = 0
        while filled < len(buffer):
            timeout = TIMEOUT_S + self._grace
            ready, _, _ = select.select([stdout], [], [], timeout)
            if not ready:
                self.kill()
                raise DecoderTimeoutError(
                    self.path,
                    f"ffmpeg produced no output for {timeout:g} s and was stopped.",
                    "The file may sit on a stalled network drive or be damaged: copy it "
                    "to a local disk and try again (or raise "
                    "bkind_model.io.ffmpeg.TIMEOUT_S).",
                )
            got = stdout.readinto(buffer[filled:])  # type: ignore[attr-defined]  # a BufferedReader
            if not got:
                break
            filled += got
            self._grace = 0.0
        return filled

    def read_all(self) -> bytes:
        """Read ffmpeg's output until it ends (with the stall timeout per block)."""
        chunks = []
        block = bytearray(_READ_BLOCK)
        while got := self.readinto(memoryview(block)):
            chunks.append(bytes(block[:got]))
            if got < len(block):
                break
        return b"".join(chunks)

    def finish(self) -> str:
        """Wait for ffmpeg to exit and return its standard error.

        Raises
        ------
        VideoError
            ffmpeg exited with an error; the subclass says which.
        DecoderTimeoutError
            ffmpeg did not exit within :data:`TIMEOUT_S` seconds.
        """
        try:
            returncode = self._proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DecoderTimeoutError(
                self.path,
                f"ffmpeg did not finish within {TIMEOUT_S:g} s and was stopped.",
                "Copy the file to a local disk and try again.",
            ) from None
        stderr = self.stderr()
        self.close()
        if returncode != 0:
            raise error_from_stderr(self.path, stderr)
        return stderr

    def stderr(self) -> str:
        """Everything ffmpeg wrote to standard error so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def kill(self) -> None:
        """Stop ffmpeg now (if still running) and release its pipes."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self.close()

    def close(self) -> None:
        """Release the pipes; the process must have exited (see :meth:`kill`)."""
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> FFmpegProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def _enlarge_pipe(pipe: IO[bytes] | None) -> None:
    """Grow a pipe's kernel buffer (Linux) so that large frames cross it in few reads."""
    if pipe is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    with contextlib.suppress(OSError):  # larger than /proc/sys/fs/pipe-max-size
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def run_ffmpeg(args: Sequence[str], path: str | Path) -> tuple[bytes, str]:
    """Run ffmpeg to completion.

    Parameters
    ----------
    args : sequence of str
        ffmpeg arguments (without the executable).
    path : str or Path
        The media file, named in errors.

    Returns
    -------
    stdout : bytes
        ffmpeg's standard output.
    stderr : str
        ffmpeg's standard error (stream information, warnings).

    Raises
    ------
    VideoError
        ffmpeg failed; the subclass says why.
    DecoderTimeoutError
        ffmpeg stalled for :data:`TIMEOUT_S` seconds and was killed.
    """
    with FFmpegProcess(args, path) as process:
        stdout = process.read_all()
        return stdout, process.finish()


def check_readable(path: Path) -> None:
    """Raise the matching error when ``path`` does not exist or cannot be read.

    Uses :func:`os.access`, so it also works for files ffmpeg would open but not read.
    (The superuser can read everything, so the permission case never fires as root.)
    Anything but a regular file or a folder (a FIFO, a socket, a device) is refused before
    it is opened: reading one blocks until a writer comes, or never ends.
    """
    if not path.exists():
        raise VideoNotFoundError(path, "the file or folder does not exist.", "Check the path.")
    kind = _special_kind(path)
    if kind is not None:
        raise NotAVideoError(
            path,
            f"it is {kind}, not a regular file, and reading it may never end.",
            "Save the stream to a video file first and give that file.",
        )
    mode = os.R_OK | (os.X_OK if path.is_dir() else 0)
    if not os.access(path, mode):
        raise VideoPermissionError(
            path,
            "it cannot be read with the current permissions.",
            "Make it readable (e.g. chmod u+r) or copy it somewhere you can read.",
        )


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder, else None."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
