"""Fault benchmark: bad values, bad files, full disks, kills and races against ``bkind``.

Every case runs the real command line in a subprocess
(``python -c "from bkind_model.cli.main import main; ..." ARGS``, the same ``main`` as the
``bkind`` script; ``-m bkind_model.cli.main`` would add a ``RuntimeWarning`` line to every
stderr), declares what a correct program does, and is classified by what it did.

Usage
-----
::

    python bench/faults.py                      # every case (~40 min on 2 cores)
    python bench/faults.py --only opt.,mask.    # cases whose names start so
    python bench/faults.py --work /tmp/faults --keep   # keep the files for a look
    python bench/faults.py --list               # the case names, nothing run

The cases of the 2026-12-07 blind probe (3D, naming, behaviour, exports, overlay, many
videos, torchrun, crafted files, nesting bombs, degenerate values: one per row of
``shared/probes/defects-2026-12-07.md``) live in ``faults_probe.py``, imported from here
(~25 min of the whole with ``--jobs 1`` on a loaded 2-core machine; their prefixes are
listed in its docstring).

Options: ``--only PREFIX[,PREFIX...]``, ``--work DIR`` (default: a new temporary folder,
removed at the end unless ``--keep``), ``--jobs N`` (simple cases run N at a time; kills
and races always run alone), ``--list``.

Expectations
------------
``error``
    Exit non-zero with a message of a few lines (counted from the line holding
    ``error:``), no ``Traceback``, naming the file or option at fault (one of the case's
    ``names``, when it has any).
``ok``
    Exit 0 with valid output: a checkpoint that loads with finite weights and the steps
    asked; a results file with finite keypoints on every frame; strict JSON (no NaN) from
    ``evaluate``; an export that reads back with one row per frame.
``either``
    A clear error, or exit 0 with valid output.

Classification (one kind per case)
----------------------------------
``clear_error``, ``ok``, ``kill_resumed_bit_exact`` pass; ``skipped`` needs what this
machine lacks (a tmpfs mount, a non-root user). Failures: ``code_executed`` (a file's
planted payload ran: the marker it makes exists; checked first), ``traceback`` (a Traceback in
stderr), ``silent_wrong_output`` (exit 0 where an error was expected, or invalid/NaN
output), ``data_lost`` (a previously good file changed or vanished after a failed run, or
a reader saw a damaged checkpoint), ``unclear_error`` (non-zero exit whose message is
long, missing or does not name the culprit), ``refused_valid`` (a clear error where the
input was valid), ``not_bit_exact`` (a killed and resumed run differs from an
uninterrupted one), ``leftovers`` (temporary or ``.part`` files left once a rerun is
done), ``too_slow`` (valid output, but a tiny run crawled), ``timeout``, ``crash`` (killed by a signal), ``fixture_failed``,
``harness_error``.

Kills: ``kill.train.*`` send SIGINT/SIGHUP to the process group (like a terminal) and
SIGTERM/SIGKILL to the process, at seeded random moments, resume to the same total steps
and compare every model tensor (``torch.equal``) with an uninterrupted run;
``kill.cache.*`` interrupt the frame cache build; ``kill.extract.*`` and
``kill.export.*`` compare the rerun's output with an uninterrupted one.

Output: one JSON line on stdout, ``{"benchmark": "faults", "cases": N, "clear_errors":
n, "tracebacks": n, "silent_wrong_outputs": n, "kills": n, "kills_resumed_bit_exact": n,
"data_lost": n, "code_executions": n, "ok": n, ..., "failures": [{"case", "kind", "detail"}, ...]}``; progress
goes to stderr. Subprocesses get ``BKIND_CACHE_DIR`` inside the work folder, one torch
thread and a 6 GiB address-space limit.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAUNCH = "import sys; from bkind_model.cli.main import main; sys.exit(main(sys.argv[1:]))"
MEMORY_LIMIT = 6 << 30  # address space of every bkind subprocess, bytes
TIMEOUT = 120.0  # seconds per command of a simple case
TINY = {
    "--steps": "2",
    "--image-size": "64",
    "--batch": "4",
    "--keypoints": "3",
    "--gap": "3",
    "--threads": "1",
}
KILL_STEPS = 40  # total steps of the kill runs
PASS_KINDS = ("clear_error", "ok", "kill_resumed_bit_exact", "skipped")
FRAMES = {"video": 60, "video2": 60, "long": 600, "images": 60, "one": 1, "spaced": 60}
PROGRESS = re.compile(r"^\s*(Caching frames|Training \d+ keypoints|Convergence:|\d+%\|)")
ERROR = re.compile(r"(bkind[\w ]*: )?error:", re.IGNORECASE)
TEMPORARY = re.compile(r"(\.tmp($|\.)|\.part$)")


def tiny(**changes: str | None) -> list[str]:
    """The tiny training options, with some changed (``None`` drops one)."""
    options = dict(TINY)
    for key, value in changes.items():
        option = "--" + key.replace("_", "-")
        if value is None:
            options.pop(option, None)
        else:
            options[option] = value
    return [part for pair in options.items() for part in pair]


# ==========================================================================================
# Subprocesses
# ==========================================================================================


@dataclass
class Result:
    """What one command did."""

    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool = False


class Proc:
    """A ``bkind`` subprocess in its own session, its output collected by threads."""

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: Path, memory: int = MEMORY_LIMIT
    ) -> None:
        self.argv = argv
        self.start = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        with contextlib.suppress(OSError, AttributeError):
            if memory:
                resource.prlimit(self.popen.pid, resource.RLIMIT_AS, (memory, memory))
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, self._err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, sink: list[bytes]) -> None:
        fd = stream.fileno()
        while True:
            try:
                block = os.read(fd, 65536)
            except OSError:
                return
            if not block:
                return
            sink.append(block)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, pattern: str, timeout: float) -> bool:
        """Wait until stderr matches ``pattern``; False when it ends or times out first."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            if regex.search(self.stderr):
                return True
            if not self.running():
                return bool(regex.search(self.stderr))
            time.sleep(0.02)
        return False

    def send(self, sig: int) -> None:
        """SIGINT and SIGHUP go to the process group (a terminal's way), others to the pid."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sig in (signal.SIGINT, signal.SIGHUP):
                os.killpg(self.popen.pid, sig)
            else:
                os.kill(self.popen.pid, sig)

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> Result:
        """Wait for the end (killing the whole group after ``timeout``)."""
        timed_out = False
        try:
            self.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill_all()
            self.popen.wait()
        self.kill_all()  # children (ffmpeg) of a process that died
        for thread in self._threads:
            thread.join(timeout=5)
        wall = time.monotonic() - self.start
        return Result(self.argv, self.popen.returncode, self.stdout, self.stderr, wall, timed_out)


def run_cli(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float = TIMEOUT,
    memory: int = MEMORY_LIMIT,
) -> Result:
    """Run one ``bkind`` command to its end (or to ``timeout``)."""
    return Proc(argv, env, cwd, memory).wait(timeout)


# ==========================================================================================
# Reading what a command did
# ==========================================================================================


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


def screen_lines(text: str) -> list[str]:
    """Lines as a terminal shows them (carriage returns overwrite), progress removed."""
    lines = []
    for raw in text.splitlines():
        line = raw.split("\r")[-1].rstrip()
        error = ERROR.search(line)
        if error and error.start() > 0 and PROGRESS.match(line):
            line = line[error.start() :]  # an error printed on the end of a progress line
        if line.strip() and not PROGRESS.match(line):
            lines.append(line)
    return lines


def message_of(stderr: str) -> list[str]:
    """The error message: from the first line holding ``error:`` (or all that is left)."""
    lines = screen_lines(stderr)
    for i, line in enumerate(lines):
        match = ERROR.search(line)
        if match:
            return [line[match.start() :], *lines[i + 1 :]]
    return lines


def traceback_summary(stderr: str) -> str:
    """The exception line and the deepest ``bkind_model`` frame of a traceback."""
    lines = stderr.splitlines()
    start = max(i for i, line in enumerate(lines) if "Traceback (most recent" in line)
    tail = lines[start:]
    where = ""
    for line in tail:
        match = re.search(r'File "[^"]*?(bkind_model/[^"]+)", line (\d+)', line)
        if match:
            where = f"{match.group(1)}:{match.group(2)}"
    exception = next(
        (line.strip() for line in reversed(tail) if line.strip() and not line.startswith(" ")),
        "?",
    )
    return f"{exception[:300]}" + (f" (at {where})" if where else "")


def name_variants(name: str) -> list[str]:
    base = name.lower().lstrip("-")
    return [name.lower(), base, base.replace("-", "_"), base.replace("-", " ")]


def clear_message(stderr: str, names: list[str]) -> tuple[bool, str]:
    """Whether a failed command's message is short and names the culprit."""
    message = message_of(stderr)
    if not message:
        return False, "exit non-zero without any message"
    text = " ".join(message)
    if len(message) > 4:
        return False, f"message of {len(message)} lines: " + text[:300]
    if names:
        lowered = text.lower()
        wanted = [variant for name in names for variant in name_variants(name)]
        if not any(variant and variant in lowered for variant in wanted):
            return False, f"message names none of {names}: " + text[:300]
    return True, text[:300]


def sha(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's file names and contents; None when absent."""
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
        listing = [f"{f.relative_to(path)} {sha(f)}" for f in files]
        return hashlib.sha256("\n".join(listing).encode()).hexdigest()
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def leftovers(folder: Path, ignore: tuple[str, ...] = ("filler",)) -> list[str]:
    """Temporary and partial files under ``folder``."""
    found = []
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and path.name not in ignore and TEMPORARY.search(path.name):
                found.append(str(path.relative_to(folder)))
    return sorted(found)


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name`` in an argument list."""
    for i, arg in enumerate(argv[:-1]):
        if arg == name:
            return argv[i + 1]
    return None


# -- validators: None when valid, else what is wrong ---------------------------------------


def load_torch(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def check_checkpoint(path: Path, steps: int | None = None) -> str | None:
    import torch

    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        return f"no checkpoint at {path}"
    try:
        state = load_torch(path)
    except Exception as exc:
        return f"checkpoint unreadable: {type(exc).__name__}: {str(exc)[:150]}"
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not model:
        return "checkpoint holds no model weights"
    bad = [
        key
        for key, value in model.items()
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if bad:
        return f"non-finite weights in {bad[:3]}"
    if steps is not None and int(state.get("step", -1)) != steps:
        return f"checkpoint at step {state.get('step')}, {steps} asked"
    return None


def check_results(path: Path, n_frames: int | None) -> str | None:
    import h5py
    import numpy as np

    if not path.is_file():
        return f"no results file at {path}"
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "bkind-results-1":
                return "results lack the bkind format attribute"
            if int(f.attrs.get("frames_done", -1)) != int(f.attrs.get("n_frames", -2)):
                return "results are unfinished (frames_done != n_frames)"
            keypoints = f["keypoints"][()]
            arrays = {name: f[name][()] for name in ("keypoints", "confidence", "covariance")}
    except Exception as exc:
        return f"results unreadable: {type(exc).__name__}: {str(exc)[:150]}"
    if n_frames is not None and keypoints.shape[0] != n_frames:
        return f"results hold {keypoints.shape[0]} frames, the video {n_frames}"
    for name, values in arrays.items():
        if not np.isfinite(values).all():
            return f"{name} has {int((~np.isfinite(values)).sum())} non-finite values"
    return None


def check_export(path: Path, n_frames: int | None) -> str | None:
    import numpy as np
    import pandas as pd

    if not path.is_file():
        return f"no export at {path}"
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, header=[0, 1, 2], index_col=0)
        else:
            frame = pd.read_hdf(path)
    except Exception as exc:
        return f"export unreadable: {type(exc).__name__}: {str(exc)[:150]}"
    if n_frames is not None and len(frame) != n_frames:
        return f"export has {len(frame)} rows, {n_frames} frames"
    values = frame.to_numpy(np.float64)
    if np.isinf(values).any():
        return "export holds infinite values"
    likelihood = frame.xs("likelihood", axis=1, level=-1).to_numpy(np.float64)
    if ((likelihood < 0) | (likelihood > 1)).any():
        return "likelihood outside [0, 1]"
    return None


def check_evaluation(stdout: str) -> str | None:
    def refuse(token: str) -> float:
        raise ValueError(f"{token} in the JSON")

    try:
        summary = json.loads(stdout, parse_constant=refuse)
    except ValueError as exc:
        return f"evaluate printed invalid JSON ({str(exc)[:120]})"
    if not isinstance(summary, dict) or "keypoints" not in summary:
        return "evaluate JSON lacks 'keypoints'"

    def numbers(value: Any) -> Iterator[float]:
        if isinstance(value, dict):
            for item in value.values():
                yield from numbers(item)
        elif isinstance(value, list):
            for item in value:
                yield from numbers(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield float(value)

    if not all(math.isfinite(x) for x in numbers(summary)):
        return "evaluate JSON holds non-finite numbers"
    return None


def models_equal(a: Path, b: Path) -> str | None:
    """None when both checkpoints hold the same step and bit-equal model tensors."""
    import torch

    try:
        first, second = load_torch(a), load_torch(b)
    except Exception as exc:
        return f"cannot load for comparison: {type(exc).__name__}: {str(exc)[:120]}"
    if first.get("step") != second.get("step"):
        return f"steps differ: {first.get('step')} vs {second.get('step')}"
    ma, mb = first["model"], second["model"]
    if set(ma) != set(mb):
        return "model keys differ"
    differ = [key for key in ma if not torch.equal(ma[key], mb[key])]
    if differ:
        return f"{len(differ)} of {len(ma)} tensors differ (e.g. {differ[0]})"
    return None


def results_equal(a: Path, b: Path) -> str | None:
    import h5py
    import numpy as np

    try:
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            for name in ("keypoints", "confidence", "covariance"):
                if not np.array_equal(fa[name][()], fb[name][()], equal_nan=True):
                    return f"{name} differs from the uninterrupted extraction"
    except Exception as exc:
        return f"cannot compare results: {type(exc).__name__}: {str(exc)[:120]}"
    return None


# ==========================================================================================
# Fixtures: built once, lazily, under WORK/fx
# ==========================================================================================


class FixtureError(Exception):
    """A fixture could not be built (usually: the code under test failed)."""


class Unsafe:
    """Pickled into a checkpoint: loading it would need to run this module's code."""

    def __reduce__(self) -> tuple:
        return (print, ("this checkpoint ran code",))


class Fixtures:
    """Files shared by the cases, by name, built on first use (thread-safe)."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.root = work / "fx"
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.work = work
        self._built: dict[str, str] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    def __getitem__(self, name: str) -> str:
        with self._lock:
            if name in self._built:
                return self._built[name]
            if name in self._failed:
                raise FixtureError(f"fixture {name}: {self._failed[name]}")
            builder = getattr(self, f"_fx_{name}", None)
            if builder is None:
                raise KeyError(name)
            try:
                value = str(builder())
            except FixtureError as exc:
                self._failed[name] = str(exc)
                raise
            except Exception as exc:
                self._failed[name] = f"{type(exc).__name__}: {exc}"
                raise FixtureError(f"fixture {name}: {self._failed[name]}") from exc
            self._built[name] = value
            return value

    def built(self, name: str) -> str | None:
        """The fixture's path if it was built, else None (never builds)."""
        with self._lock:
            return self._built.get(name)

    def known(self, name: str) -> bool:
        return hasattr(self, f"_fx_{name}")

    def path(self, name: str) -> Path:
        return Path(self[name])

    def digests(self) -> dict[str, str | None]:
        """Hashes of every fixture file built so far."""
        with self._lock:
            paths = [Path(p) for p in self._built.values()]
        files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
        return {str(f): sha(f) for f in files if f.is_file() and f.name != ".lock"}

    def cli(self, argv: list[str], what: str, timeout: float = 300) -> Result:
        res = run_cli(argv, self.env, self.root, timeout)
        if res.rc != 0:
            lines = screen_lines(res.stderr)[-3:]
            raise FixtureError(f"{what} failed (rc {res.rc}): {' | '.join(lines)[:300]}")
        return res

    # -- videos and folders ----------------------------------------------------------------

    def _sample(self, name: str, **config: Any) -> Path:
        from bkind_model.synthetic import write_sample
        from bkind_model.synthetic.generator import SyntheticConfig

        path = self.root / name
        write_sample(path, SyntheticConfig(**config))
        return path

    def _fx_video(self) -> Path:
        return self._sample("video.mp4", height=96, width=96, n_frames=60, seed=1)

    def _fx_video2(self) -> Path:
        return self._sample("video2.mp4", height=96, width=96, n_frames=60, seed=2)

    def _fx_other_size(self) -> Path:
        return self._sample("other_size.mp4", height=64, width=80, n_frames=60, seed=1)

    def _fx_long(self) -> Path:
        return self._sample("long.mp4", height=96, width=96, n_frames=600, seed=3)

    def _fx_one(self) -> Path:
        return self._sample("one.mp4", height=96, width=96, n_frames=1, seed=1)

    def _fx_gt(self) -> Path:
        from bkind_model.synthetic.sample import ground_truth_path

        return ground_truth_path(self["video"])

    def _fx_spaced(self) -> Path:
        path = self.root / "my vidéo (1).mp4"
        shutil.copy(self["video"], path)
        return path

    def _fx_text_mp4(self) -> Path:
        path = self.root / "notes.mp4"
        path.write_text("this is not a video\n" * 20)
        return path

    def _fx_empty_mp4(self) -> Path:
        path = self.root / "empty.mp4"
        path.write_bytes(b"")
        return path

    def _fx_trunc_mp4(self) -> Path:
        data = Path(self["video"]).read_bytes()
        path = self.root / "truncated.mp4"
        path.write_bytes(data[: len(data) // 2])
        return path

    def _fx_npz_video(self) -> Path:
        return Path(self["gt"])

    def _frames(self, n: int) -> Any:
        import numpy as np

        from bkind_model.io.video import open_video

        source = open_video(self["video"])
        return [np.asarray(source.frames[i]) for i in range(n)]

    def _fx_images(self) -> Path:
        from PIL import Image

        folder = self.root / "images"
        folder.mkdir(exist_ok=True)
        for i, frame in enumerate(self._frames(FRAMES["images"])):
            Image.fromarray(frame).save(folder / f"img{i:03d}.png")
        return folder

    def _fx_empty_dir(self) -> Path:
        folder = self.root / "no_images"
        folder.mkdir(exist_ok=True)
        return folder

    def _fx_txt_dir(self) -> Path:
        folder = self.root / "only_text"
        folder.mkdir(exist_ok=True)
        (folder / "readme.txt").write_text("no images here\n")
        return folder

    def _fx_mixed_dir(self) -> Path:
        from PIL import Image

        folder = self.root / "mixed_sizes"
        folder.mkdir(exist_ok=True)
        for i, frame in enumerate(self._frames(6)):
            Image.fromarray(frame).save(folder / f"img{i:03d}.png")
        Image.fromarray(self._frames(1)[0][:64, :80]).save(folder / "img006.png")
        return folder

    def _fx_bad_image_dir(self) -> Path:
        from PIL import Image

        folder = self.root / "bad_image"
        folder.mkdir(exist_ok=True)
        for i, frame in enumerate(self._frames(6)):
            Image.fromarray(frame).save(folder / f"img{i:03d}.png")
        (folder / "img006.png").write_text("not a png")
        return folder

    def _fx_afile(self) -> Path:
        path = self.root / "a_regular_file"
        path.write_text("I am a file, not a folder\n")
        return path

    # -- static masks ----------------------------------------------------------------------

    def _fx_mask_npy(self) -> Path:
        import numpy as np

        mask = np.zeros((96, 96), np.uint8)
        mask[:8, :8] = 1
        path = self.root / "mask.npy"
        np.save(path, mask)
        return path

    def _fx_mask_png(self) -> Path:
        import numpy as np
        from PIL import Image

        mask = np.zeros((96, 96), np.uint8)
        mask[:8, :8] = 255
        path = self.root / "mask.png"
        Image.fromarray(mask).save(path)
        return path

    def _fx_mask_small(self) -> Path:
        import numpy as np

        path = self.root / "mask_50x50.npy"
        np.save(path, np.zeros((50, 50), np.uint8))
        return path

    def _fx_mask_3d(self) -> Path:
        import numpy as np

        path = self.root / "mask_rgb.npy"
        np.save(path, np.zeros((96, 96, 3), np.uint8))
        return path

    def _fx_mask_nan(self) -> Path:
        import numpy as np

        mask = np.zeros((96, 96), np.float32)
        mask[0, 0] = np.nan
        path = self.root / "mask_nan.npy"
        np.save(path, mask)
        return path

    def _fx_mask_text(self) -> Path:
        path = self.root / "mask_text.png"
        path.write_text("not an image\n")
        return path

    def _fx_mask_empty(self) -> Path:
        path = self.root / "mask_empty.npy"
        path.write_bytes(b"")
        return path

    # -- runs, checkpoints -----------------------------------------------------------------

    def _fx_run_good(self) -> Path:
        run = self.root / "run_good"
        self.cli(["train", self["video"], "--out", str(run), *tiny()], "tiny training")
        return run

    def _fx_ckpt(self) -> Path:
        return Path(self["run_good"]) / "checkpoint.pt"

    def _edited_ckpt(self, name: str, edit: Callable[[dict], Any]) -> Path:
        import torch

        state = load_torch(Path(self["ckpt"]))
        state = edit(state) or state
        path = self.root / name
        torch.save(state, path)
        return path

    def _fx_ckpt_nan(self) -> Path:
        def edit(state: dict) -> None:
            key = next(k for k, v in state["model"].items() if v.is_floating_point())
            state["model"][key].fill_(float("nan"))

        return self._edited_ckpt("nan_weights.pt", edit)

    def _fx_ckpt_one_nan(self) -> Path:
        def edit(state: dict) -> None:
            key = next(k for k, v in state["model"].items() if v.is_floating_point())
            state["model"][key].view(-1)[0] = float("nan")

        return self._edited_ckpt("one_nan_weight.pt", edit)

    def _fx_ckpt_inf(self) -> Path:
        def edit(state: dict) -> None:
            key = [k for k, v in state["model"].items() if v.is_floating_point()][-1]
            state["model"][key].fill_(float("inf"))

        return self._edited_ckpt("inf_weights.pt", edit)

    def _fx_ckpt_foreign(self) -> Path:
        import torch

        def edit(state: dict) -> dict:
            return {"weights": torch.zeros(3)}

        return self._edited_ckpt("foreign.pt", edit)

    def _fx_ckpt_nomodel(self) -> Path:
        return self._edited_ckpt("no_model.pt", lambda state: state.pop("model"))

    def _fx_ckpt_badconfig(self) -> Path:
        return self._edited_ckpt(
            "bad_config.pt", lambda state: state["config"].update(n_keypoints=0)
        )

    def _fx_ckpt_arch(self) -> Path:
        return self._edited_ckpt(
            "wrong_shapes.pt", lambda state: state["config"].update(n_keypoints=5)
        )

    def _fx_ckpt_format(self) -> Path:
        return self._edited_ckpt("old_format.pt", lambda state: state.update(format="other-1"))

    def _fx_ckpt_unsafe(self) -> Path:
        import torch

        path = self.root / "unsafe.pt"
        torch.save({"format": "bkind-checkpoint-1", "model": Unsafe()}, path)
        return path

    def _fx_ckpt_trunc(self) -> Path:
        data = Path(self["ckpt"]).read_bytes()
        path = self.root / "truncated.pt"
        path.write_bytes(data[: len(data) // 2])
        return path

    def _fx_ckpt_text(self) -> Path:
        path = self.root / "text.pt"
        path.write_text("not a checkpoint\n")
        return path

    def _fx_ckpt_empty(self) -> Path:
        path = self.root / "empty.pt"
        path.write_bytes(b"")
        return path

    def _fx_run_empty(self) -> Path:
        folder = self.root / "run_without_checkpoint"
        folder.mkdir(exist_ok=True)
        return folder

    # -- results and exports ---------------------------------------------------------------

    def _fx_results(self) -> Path:
        path = self.root / "results.h5"
        self.cli(["extract", self["run_good"], self["video"], "--out", str(path)], "extract")
        return path

    def _fx_results_long(self) -> Path:
        path = self.root / "results_long.h5"
        argv = ["extract", self["run_good"], self["long"], "--out", str(path)]
        proc = Proc(argv, self.env, self.root)
        proc.wait_for(r"\d+%\|", 120)
        started = time.monotonic()
        res = proc.wait(300)
        if res.rc != 0:
            raise FixtureError(f"extract failed (rc {res.rc}): {message_of(res.stderr)[:2]}")
        self.timings["extract_long"] = time.monotonic() - started  # frames only
        return path

    def _edited_results(self, name: str, edit: Callable[[Any], None]) -> Path:
        import h5py

        path = self.root / name
        shutil.copy(self["results"], path)
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    def _fx_results_partial(self) -> Path:
        return self._edited_results("partial.h5", lambda f: f.attrs.__setitem__("frames_done", 10))

    def _fx_results_nan(self) -> Path:
        def edit(f: Any) -> None:
            f["keypoints"][0, 0] = float("nan")
            f["confidence"][1, 0] = float("nan")

        return self._edited_results("nan_keypoints.h5", edit)

    def _fx_results_moved(self) -> Path:
        return self._edited_results(
            "moved_video.h5",
            lambda f: f.attrs.__setitem__("video_path", str(self.root / "gone" / "video.mp4")),
        )

    def _fx_nonresults_h5(self) -> Path:
        import h5py

        path = self.root / "not_results.h5"
        with h5py.File(path, "w") as f:
            f["x"] = [1, 2, 3]
        return path

    def _fx_garbage_h5(self) -> Path:
        path = self.root / "garbage.h5"
        path.write_bytes(random.Random(0).randbytes(4096))
        return path

    def _fx_text_h5(self) -> Path:
        path = self.root / "text.h5"
        path.write_text("not hdf5\n")
        return path

    def _fx_dlc_h5(self) -> Path:
        path = self.root / "exported.h5"
        self.cli(["export", self["results"], "--out", str(path)], "export")
        return path

    def _fx_dlc_csv(self) -> Path:
        path = self.root / "exported.csv"
        self.cli(["export", self["results"], "--out", str(path)], "export")
        return path

    # -- labels ----------------------------------------------------------------------------

    def _joints(self) -> tuple[Any, list[str]]:
        from bkind_model.synthetic import load_ground_truth

        truth = load_ground_truth(self["gt"])
        return truth.joints[:, 0].astype(float), list(truth.joint_names)

    def _labels_csv(
        self, name: str, joints: Any, names: list[str], levels: int = 1, animal: bool = False
    ) -> Path:
        pad = [""] * (levels - 1)
        columns = [(joint, coord) for joint in names for coord in ("x", "y")]
        rows = [["scorer", *pad, *["bench"] * len(columns)]]
        if animal:
            rows.append(["individuals", *pad, *["mouse1"] * len(columns)])
        rows.append(["bodyparts", *pad, *[j for j, _ in columns]])
        rows.append(["coords", *pad, *[c for _, c in columns]])
        for t in range(len(joints)):
            image = f"img{t:03d}.png"
            index = (
                [f"labeled-data/video/{image}"]
                if levels == 1
                else ["labeled-data", "video", image]
            )
            values = ["" if math.isnan(v) else f"{v:.3f}" for v in joints[t].reshape(-1)]
            rows.append([*index, *values])
        path = self.root / name
        path.write_text("\n".join(",".join(row) for row in rows) + "\n")
        return path

    def _fx_labels_csv(self) -> Path:
        return self._labels_csv("CollectedData_bench.csv", *self._joints())

    def _fx_labels_h5(self) -> Path:
        import pandas as pd

        joints, names = self._joints()
        columns = pd.MultiIndex.from_product(
            [["bench"], names, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
        )
        index = [f"labeled-data/video/img{t:03d}.png" for t in range(len(joints))]
        frame = pd.DataFrame(joints.reshape(len(joints), -1), columns=columns, index=index)
        path = self.root / "CollectedData_bench.h5"
        frame.to_hdf(path, key="df_with_missing", mode="w")
        return path

    def _fx_labels_3idx(self) -> Path:
        return self._labels_csv("CollectedData_3index.csv", *self._joints(), levels=3)

    def _fx_labels_ma(self) -> Path:
        return self._labels_csv("CollectedData_ma.csv", *self._joints(), levels=3, animal=True)

    def _fx_labels_nan(self) -> Path:
        joints, names = self._joints()
        joints = joints.copy()
        joints[::7, 1] = float("nan")  # some cells unlabelled, as in any labelled set
        joints[3, :] = float("nan")
        return self._labels_csv("CollectedData_nan.csv", joints, names)

    def _fx_labels_nan_joint(self) -> Path:
        joints, names = self._joints()
        joints = joints.copy()
        joints[:, 2] = float("nan")  # a joint nobody labelled
        return self._labels_csv("CollectedData_nanjoint.csv", joints, names)

    def _fx_labels_short(self) -> Path:
        joints, names = self._joints()
        return self._labels_csv("CollectedData_30.csv", joints[:30], names)

    def _fx_labels_garbage_csv(self) -> Path:
        path = self.root / "garbage.csv"
        path.write_text("just,some\nwords,here\n")
        return path

    def _fx_labels_2header(self) -> Path:
        text = Path(self["labels_csv"]).read_text().splitlines()
        path = self.root / "CollectedData_2header.csv"
        path.write_text("\n".join(text[1:]) + "\n")
        return path

    def _fx_labels_txt(self) -> Path:
        path = self.root / "labels.txt"
        path.write_text("1 2 3\n")
        return path

    def _fx_labels_npz_bad(self) -> Path:
        path = self.root / "bad.groundtruth.npz"
        path.write_bytes(b"PK\x03\x04 not really a zip")
        return path

    # -- references for kills and races ----------------------------------------------------

    def _fx_kill_ref(self) -> Path:
        run = self.root / "kill_ref"
        argv = ["train", self["video"], "--out", str(run), *tiny(steps=str(KILL_STEPS))]
        proc = Proc(argv, self.env, self.root)
        started = None
        while proc.running():
            if started is None and "Training " in proc.stderr:
                started = time.monotonic() - proc.start
            time.sleep(0.02)
        res = proc.wait(5)
        if res.rc != 0:
            raise FixtureError(f"reference training failed (rc {res.rc})")
        self.timings["kill_startup"] = started or res.wall_s / 2
        self.timings["kill_total"] = res.wall_s
        return run / "checkpoint.pt"

    def _fx_kill_ref2(self) -> Path:
        run = self.root / "kill_ref2"
        self.cli(["train", self["video"], "--out", str(run), *tiny(steps=str(KILL_STEPS))], "ref")
        return run / "checkpoint.pt"

    def _fx_cache_ref(self) -> Path:
        run = self.root / "cache_ref"
        env = self.env | {"BKIND_CACHE_DIR": str(self.root / "cache_ref_cache")}
        res = run_cli(["train", self["long"], "--out", str(run), *tiny()], env, self.root, 300)
        if res.rc != 0:
            raise FixtureError(f"reference training on the long video failed (rc {res.rc})")
        return run / "checkpoint.pt"

    def _fx_export_ref(self) -> Path:
        path = self.root / "export_long.csv"
        start = time.monotonic()
        self.cli(["export", self["results_long"], "--out", str(path)], "export")
        self.timings["export_long"] = time.monotonic() - start
        return path


# ==========================================================================================
# Cases
# ==========================================================================================


class Skip(Exception):
    """The case needs what this machine lacks."""


@dataclass
class Outcome:
    kind: str
    detail: str = ""


@dataclass
class Case:
    """One fault and what a correct program does with it.

    ``argv``, ``names``, ``guard`` and ``prep`` are templates: ``$tmp`` is the case's own
    folder, ``$work`` the work folder, any other ``$name`` a fixture.
    """

    name: str
    expect: str = "error"  # "error" | "ok" | "either"
    argv: str | list[str] = ""
    names: tuple[str, ...] = ()  # an error message must mention one of these
    guard: tuple[str, ...] = ()  # files that must survive a failed run unchanged
    prep: tuple[tuple[str, ...], ...] = ()  # operations before the run (see Ctx.prepare)
    check: Callable[[Ctx, Result], str | None] | None = None  # more checks of a success
    runner: Callable[[Ctx, Case], Outcome] | None = None  # a special kind of case
    params: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # fixtures a runner or setup uses
    setup: Callable[[Ctx], None] | None = None  # writes the case's own files, after prep
    marker: str = ""  # a file a planted payload would create: must not exist after the run
    timeout: float = TIMEOUT
    memory: int = MEMORY_LIMIT  # address-space limit of its subprocesses, bytes
    solo: bool = False  # run alone (timing-sensitive)

    def templates(self) -> list[str]:
        argv = self.argv if isinstance(self.argv, list) else [self.argv]
        ops = [part for op in self.prep for part in op[1:]]
        return [*argv, *self.names, *self.guard, *ops]


def C(name: str, expect: str, argv: str | list[str], *names: str, **more: Any) -> Case:
    """A case row: name, expectation, command line, names the message should mention."""
    return Case(name, expect, argv, names, **more)


# -- extra checks of a successful run -------------------------------------------------------


def stored_config(**wanted: Any) -> Callable[[Ctx, Result], str | None]:
    """The checkpoint's config must hold what was asked."""

    def check(ctx: Ctx, res: Result) -> str | None:
        state = load_torch(Path(option(res.argv, "--out") or "") / "checkpoint.pt")
        config = state.get("config", {})
        for key, value in wanted.items():
            got = config.get(key)
            same = got == value or (
                isinstance(got, int | float)
                and isinstance(value, int | float)
                and (got == value or (math.isnan(got) and math.isnan(value)))
            )
            if not same:
                return f"checkpoint config {key}={got!r}, {value!r} asked"
        return None

    return check


def resumed_lr(lr: float) -> Callable[[Ctx, Result], str | None]:
    """After resuming with a new lr, the config and the optimiser must both use it."""

    def check(ctx: Ctx, res: Result) -> str | None:
        problem = stored_config(lr=lr)(ctx, res)
        if problem:
            return problem
        state = load_torch(Path(option(res.argv, "--out") or "") / "checkpoint.pt")
        base = state.get("scheduler", {}).get("base_lrs", [lr])
        groups = [
            g.get("initial_lr", lr) for g in state.get("optimizer", {}).get("param_groups", [])
        ]
        if any(abs(x - lr) > 1e-12 for x in [*base, *groups]):
            return f"config says lr {lr} but the optimiser/schedule kept lr {base[0]}"
        return None

    return check


def not_slow(seconds: float) -> Callable[[Ctx, Result], str | None]:
    """A tiny run must end within ``seconds``."""

    def check(ctx: Ctx, res: Result) -> str | None:
        if res.wall_s > seconds:
            return f"too_slow: a 2-step run took {res.wall_s:.0f} s (limit {seconds:.0f} s)"
        return None

    return check


def recorded_videos(*keys: str) -> Callable[[Ctx, Result], str | None]:
    def check(ctx: Ctx, res: Result) -> str | None:
        state = load_torch(Path(option(res.argv, "--out") or "") / "checkpoint.pt")
        wanted = [str(Path(ctx.fx[k]).resolve()) for k in keys]
        got = [str(Path(v).resolve()) for v in state.get("videos", [])]
        return None if got == wanted else f"checkpoint records videos {got}, trained on {wanted}"

    return check


def same_as_results(key: str) -> Callable[[Ctx, Result], str | None]:
    def check(ctx: Ctx, res: Result) -> str | None:
        return results_equal(ctx.output_of(res), Path(ctx.fx[key]))

    return check


# -- the tables -----------------------------------------------------------------------------

#: (option, value, expectation, extra arguments) on an otherwise valid tiny training.
TRAIN_OPTIONS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("--gap", "0", "error", ()),
    ("--gap", "-1", "error", ()),
    ("--gap", "inf", "error", ()),
    ("--gap", "nan", "error", ()),
    ("--gap", "1e9", "error", ()),
    ("--gap", "60", "error", ()),
    ("--gap", "59", "either", ()),
    ("--gap", "0.5", "either", ()),
    ("--gap", "abc", "error", ()),
    ("--gap", "0.1", "ok", ("--gap-seconds",)),
    ("--gap", "100", "error", ("--gap-seconds",)),
    ("--gap", "1e-9", "either", ("--gap-seconds",)),
    ("--steps", "-1", "error", ()),
    ("--steps", "0", "either", ()),
    ("--steps", "abc", "error", ()),
    ("--steps", "1", "ok", ()),
    ("--batch", "0", "error", ()),
    ("--batch", "-3", "error", ()),
    ("--batch", "100000", "error", ()),
    ("--batch", "2.5", "error", ()),
    ("--batch", "1", "ok", ()),
    ("--image-size", "0", "error", ()),
    ("--image-size", "31", "error", ()),
    ("--image-size", "100", "error", ()),
    ("--image-size", "100000", "error", ()),
    ("--image-size", "-8", "error", ()),
    ("--image-size", "32", "ok", ()),
    ("--image-size", "40", "ok", ()),
    ("--keypoints", "0", "error", ()),
    ("--keypoints", "-1", "error", ()),
    ("--keypoints", "1000", "error", ()),
    ("--keypoints", "1", "ok", ()),
    ("--lr", "0", "error", ()),
    ("--lr", "-1", "error", ()),
    ("--lr", "nan", "error", ()),
    ("--lr", "inf", "error", ()),
    ("--lr", "1e9", "either", ()),
    ("--lr", "1e-4", "ok", ()),
    ("--device", "tpu", "error", ()),
    ("--device", "cuda:99", "error", ()),
    ("--device", "", "error", ()),
    ("--device", "foo", "error", ()),
    ("--device", "mps", "error", ()),
    ("--device", "CPU", "either", ()),
    ("--device", "cpu", "ok", ()),
    ("--device", "auto", "ok", ()),
    ("--threads", "-1", "error", ()),
    ("--threads", "0", "either", ()),
    ("--threads", "1000", "either", ()),
    ("--threads", "2", "ok", ()),
    ("--crop-size", "-5", "error", ()),
    ("--crop-size", "nan", "error", ()),
    ("--crop-size", "inf", "error", ()),
    ("--crop-size", "5", "either", ()),
    ("--crop-size", "1e6", "either", ()),
    ("--crop-size", "0", "ok", ()),
    ("--crop-size", "48", "ok", ()),
    ("--seed", "-1", "error", ()),  # seeds are 0 .. 2**32 - 1, as numpy and sklearn take
    ("--seed", "123456789012345678901234", "either", ()),
    ("--seed", "abc", "error", ()),
    ("--encoder", "vgg", "error", ()),
    ("--loss", "l1", "error", ()),
    ("--pretrained", "$work/missing_weights.pth", "error", ()),
    ("--pretrained", "$text_mp4", "error", ()),
]

#: Option -> key of the stored config, checked on "ok" rows.
CONFIG_KEYS = {
    "--gap": "frame_gap",
    "--steps": "steps",
    "--batch": "batch_size",
    "--image-size": "image_size",
    "--keypoints": "n_keypoints",
    "--lr": "lr",
    "--threads": "threads",
    "--crop-size": "crop_size",
    "--seed": "seed",
}

#: (label, --mask-settings JSON, expectation, extra arguments, key the message names).
MASK_SETTINGS: list[tuple[str, str, str, tuple[str, ...], str]] = [
    ("hue_red", '{"hue": "red"}', "error", (), "hue"),
    ("hue_5", '{"hue": 5}', "error", (), "hue"),
    ("hue_3", '{"hue": [1, 2, 3]}', "error", (), "hue"),
    ("hue_400", '{"hue": [400, 10]}', "error", (), "hue"),
    ("hue_null", '{"hue": null}', "error", (), "hue"),
    ("value_3", '{"value": [0, 0.3, 0.5]}', "error", (), "value"),
    ("value_reversed", '{"value": [0.5, 0.2]}', "error", (), "value"),
    ("saturation_2", '{"saturation": [0, 2]}', "error", (), "saturation"),
    ("cleanup_1.5", '{"cleanup_px": 1.5}', "error", (), "cleanup_px"),
    ("cleanup_-1", '{"cleanup_px": -1}', "error", (), "cleanup_px"),
    ("cleanup_huge", '{"cleanup_px": 1e9}', "error", (), "cleanup_px"),
    ("change_2", '{"change": 2}', "error", (), "change"),
    ("change_str", '{"change": "0.1"}', "error", (), "change"),
    ("change_nan", '{"change": NaN}', "error", (), "mask-settings"),  # not JSON at all
    ("chroma_1", '{"shadow_chroma": 1}', "error", (), "shadow_chroma"),
    ("prior_-1", '{"animal_prior": -1}', "error", (), "animal_prior"),
    ("prior_inf", '{"animal_prior": Infinity}', "error", (), "mask-settings"),
    ("method_x", '{"method": "x"}', "error", (), "method"),
    ("use_x", '{"use": "x"}', "error", (), "use"),
    ("static_missing", '{"static_mask": "/no/such/mask.png"}', "error", (), "mask.png"),
    ("not_json", "not json", "error", (), "mask-settings"),
    ("list", "[1]", "error", (), "mask-settings"),
    ("unknown", '{"unknown": 1}', "error", (), "unknown"),
    ("empty_string", "", "either", (), "mask-settings"),
    ("empty_object", "{}", "ok", ("--masks", "background"), ""),
    ("colour_blue", '{"hue": [90, 130]}', "ok", ("--masks", "colour"), ""),
    ("use_target", '{"value": [0, 0.3]}', "ok", ("--mask-use", "target"), ""),
    ("use_black", "{}", "ok", ("--mask-use", "black"), ""),
]

#: (label, --static-mask file, expectation, names).
STATIC_MASKS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("missing", "$work/no_such_mask.png", "error", ("no_such_mask.png",)),
    ("wrong_size", "$mask_small", "error", ("mask_50x50.npy",)),
    ("text_file", "$mask_text", "error", ("mask_text.png",)),
    ("empty_file", "$mask_empty", "error", ("mask_empty.npy",)),
    ("rgb_npy", "$mask_3d", "either", ("mask_rgb.npy",)),
    ("nan_npy", "$mask_nan", "either", ("mask_nan.npy",)),
    ("npy", "$mask_npy", "ok", ()),
    ("png", "$mask_png", "ok", ()),
]

#: (label, --folds, expectation).
EVAL_FOLDS: list[tuple[str, str, str]] = [
    ("0", "0", "error"),
    ("1", "1", "error"),
    ("-2", "-2", "error"),
    ("10000", "10000", "error"),
    ("abc", "abc", "error"),
    ("3", "3", "ok"),
    ("60", "60", "either"),
]

TRAIN = "train $video --out $tmp/run " + " ".join(tiny())
GOOD_RUN = (("copy", "$run_good", "$tmp/run"),)
GUARD_RUN = ("$tmp/run/checkpoint.pt",)
GOOD_RESULTS = (("copy", "$results", "$tmp/r.h5"),)
FULL_DISK = "disk", "space", "full"


def generated_cases() -> list[Case]:
    """Cases built from the tables above."""
    cases = []
    for opt, value, expect, extra in TRAIN_OPTIONS:
        changes = {opt.removeprefix("--").replace("-", "_"): value}
        argv = ["train", "$video", "--out", "$tmp/run", *tiny(**changes), *extra]
        if opt not in TINY:
            argv = ["train", "$video", "--out", "$tmp/run", *tiny(), opt, value, *extra]
        check = None
        if expect == "ok" and opt in CONFIG_KEYS:
            stored = value if opt == "--device" else float(value)
            check = stored_config(**{CONFIG_KEYS[opt]: stored})
        shown = Path(value).stem.lstrip("$") if value.startswith("$") else value
        name = f"opt.{opt.removeprefix('--')}={shown}{'.seconds' if extra else ''}"
        more: dict[str, Any] = {"check": check}
        if (opt, value) == ("--threads", "1000"):
            # 8 GiB of thread stacks: no address-space limit; the run must not crawl either
            more = {"memory": 0, "timeout": 45.0, "check": not_slow(30.0)}
            more["params"] = {"slow_if_timeout": True}
        cases.append(Case(name, expect, argv, (opt,), **more))
    for label, settings, expect, extra, key in MASK_SETTINGS:
        argv = ["train", "$video", "--out", "$tmp/run", *tiny(), "--mask-settings", settings]
        cases.append(Case(f"mask.{label}", expect, [*argv, *extra], (key,) if key else ()))
    for label, path, expect, names in STATIC_MASKS:
        argv = ["train", "$video", "--out", "$tmp/run", *tiny(), "--static-mask", path]
        cases.append(Case(f"static.{label}", expect, argv, names))
    for label, folds, expect in EVAL_FOLDS:
        argv = ["evaluate", "$results", "$gt", "--folds", folds]
        cases.append(Case(f"eval.folds={label}", expect, argv, ("--folds", "fold")))
    return cases


def file_cases() -> list[Case]:
    """Bad and good files given to each command."""
    t = " ".join(tiny())
    return [
        # -- training videos ---------------------------------------------------------------
        C("video.missing", "error", f"train $work/nope.mp4 --out $tmp/run {t}", "nope.mp4"),
        C("video.text_as_mp4", "error", f"train $text_mp4 --out $tmp/run {t}", "notes.mp4"),
        C("video.empty_file", "error", f"train $empty_mp4 --out $tmp/run {t}", "empty.mp4"),
        C("video.truncated", "error", f"train $trunc_mp4 --out $tmp/run {t}", "truncated.mp4"),
        C("video.one_frame_gap", "error", f"train $one --out $tmp/run {t}", "one.mp4"),
        C(
            "video.one_frame_nogap",
            "error",
            ["train", "$one", "--out", "$tmp/run", *tiny(gap=None)],
            "one.mp4",
        ),
        C("video.no_images", "error", f"train $empty_dir --out $tmp/run {t}", "no_images"),
        C("video.only_text", "error", f"train $txt_dir --out $tmp/run {t}", "only_text"),
        C("video.mixed_sizes", "error", f"train $mixed_dir --out $tmp/run {t}", "mixed_sizes"),
        C("video.bad_image", "error", f"train $bad_image_dir --out $tmp/run {t}", "img006.png"),
        C("video.image_folder", "ok", f"train $images --out $tmp/run {t}"),
        C("video.npz", "error", f"train $npz_video --out $tmp/run {t}", "groundtruth.npz"),
        C("video.dev_null", "error", f"train /dev/null --out $tmp/run {t}", "/dev/null"),
        C("video.sizes_differ", "error", f"train $video $other_size --out $tmp/run {t}", "size"),
        C("video.two_videos", "ok", f"train $video $video2 --out $tmp/run {t}"),
        C("video.same_twice", "either", f"train $video $video --out $tmp/run {t}", "video.mp4"),
        C("video.spaces_unicode", "ok", ["train", "$spaced", "--out", "$tmp/run", *tiny()]),
        C(
            "video.no_gap_suggested",
            "ok",
            ["train", "$video", "--out", "$tmp/run", *tiny(gap=None)],
        ),
        C("video.none_given", "error", f"train --out $tmp/run {t}", "videos"),
        # -- where training writes -----------------------------------------------------------
        C("out.under_file", "error", f"train $video --out $afile/run {t}", "a_regular_file"),
        C(
            "out.is_file",
            "error",
            f"train $video --out $tmp/occupied {t}",
            "occupied",
            prep=(("write", "$tmp/occupied", "x"),),
        ),
        C("out.proc", "error", f"train $video --out /proc/x {t}", "/proc/x"),
        C(
            "out.read_only",
            "error",
            f"train $video --out $tmp/ro/run {t}",
            "ro",
            prep=(("rofs", "$tmp/ro"),),
        ),
        C("out.nested_missing", "ok", f"train $video --out $tmp/a/b/c/run {t}"),
        C("out.missing_option", "error", f"train $video {t}", "--out"),
        C("out.empty_string", "either", ["train", "$video", "--out", "", *tiny()], "--out"),
        # -- extraction: checkpoints -----------------------------------------------------------
        C(
            "ckpt.dir_without",
            "error",
            "extract $run_empty $video --out $tmp/r.h5",
            "run_without_checkpoint",
        ),
        C("ckpt.missing_file", "error", "extract $work/none.pt $video --out $tmp/r.h5", "none.pt"),
        C("ckpt.truncated", "error", "extract $ckpt_trunc $video --out $tmp/r.h5", "truncated.pt"),
        C("ckpt.text", "error", "extract $ckpt_text $video --out $tmp/r.h5", "text.pt"),
        C("ckpt.empty", "error", "extract $ckpt_empty $video --out $tmp/r.h5", "empty.pt"),
        C(
            "ckpt.nan_weights",
            "error",
            "extract $ckpt_nan $video --out $tmp/r.h5",
            "nan_weights.pt",
        ),
        C(
            "ckpt.one_nan_weight",
            "error",
            "extract $ckpt_one_nan $video --out $tmp/r.h5",
            "one_nan_weight.pt",
        ),
        C(
            "ckpt.inf_weights",
            "error",
            "extract $ckpt_inf $video --out $tmp/r.h5",
            "inf_weights.pt",
        ),
        C("ckpt.foreign", "error", "extract $ckpt_foreign $video --out $tmp/r.h5", "foreign.pt"),
        C("ckpt.no_model", "error", "extract $ckpt_nomodel $video --out $tmp/r.h5", "no_model.pt"),
        C(
            "ckpt.bad_config",
            "error",
            "extract $ckpt_badconfig $video --out $tmp/r.h5",
            "bad_config.pt",
        ),
        C(
            "ckpt.wrong_shapes",
            "error",
            "extract $ckpt_arch $video --out $tmp/r.h5",
            "wrong_shapes.pt",
        ),
        C(
            "ckpt.other_format",
            "error",
            "extract $ckpt_format $video --out $tmp/r.h5",
            "old_format.pt",
        ),
        C(
            "ckpt.unsafe_pickle",
            "error",
            "extract $ckpt_unsafe $video --out $tmp/r.h5",
            "unsafe.pt",
        ),
        C("ckpt.video_as_ckpt", "error", "extract $video $video --out $tmp/r.h5", "video.mp4"),
        C(
            "ckpt.nan_onto_good_results",
            "error",
            "extract $ckpt_nan $video --out $tmp/r.h5 --overwrite",
            "nan_weights.pt",
            prep=GOOD_RESULTS,
            guard=("$tmp/r.h5",),
        ),
        C(
            "ckpt.text_onto_good_results",
            "error",
            "extract $ckpt_text $video --out $tmp/r.h5 --overwrite",
            "text.pt",
            prep=GOOD_RESULTS,
            guard=("$tmp/r.h5",),
        ),
        # -- extraction: videos and outputs ----------------------------------------------------
        C(
            "extract.other_size",
            "error",
            "extract $run_good $other_size --out $tmp/r.h5",
            "other_size.mp4",
        ),
        C(
            "extract.missing_video",
            "error",
            "extract $run_good $work/nope.mp4 --out $tmp/r.h5",
            "nope.mp4",
        ),
        C(
            "extract.text_video",
            "error",
            "extract $run_good $text_mp4 --out $tmp/r.h5",
            "notes.mp4",
        ),
        C(
            "extract.empty_video",
            "error",
            "extract $run_good $empty_mp4 --out $tmp/r.h5",
            "empty.mp4",
        ),
        C(
            "extract.truncated_video",
            "error",
            "extract $run_good $trunc_mp4 --out $tmp/r.h5",
            "truncated.mp4",
        ),
        C(
            "extract.no_images",
            "error",
            "extract $run_good $empty_dir --out $tmp/r.h5",
            "no_images",
        ),
        C(
            "extract.bad_video_onto_good",
            "error",
            "extract $run_good $trunc_mp4 --out $tmp/r.h5 --overwrite",
            "truncated.mp4",
            prep=GOOD_RESULTS,
            guard=("$tmp/r.h5",),
        ),
        C(
            "extract.run_folder",
            "ok",
            "extract $run_good $video --out $tmp/r.h5",
            check=same_as_results("results"),
        ),
        C(
            "extract.checkpoint_file",
            "ok",
            "extract $ckpt $video --out $tmp/r.h5",
            check=same_as_results("results"),
        ),
        C("extract.heatmaps", "ok", "extract $run_good $video --out $tmp/r.h5 --heatmaps"),
        C("extract.image_folder", "ok", "extract $run_good $images --out $tmp/r.h5"),
        C("extract.one_frame", "either", "extract $run_good $one --out $tmp/r.h5", "one.mp4"),
        C(
            "extract.default_out",
            "ok",
            "extract $run_good $tmp/v.mp4",
            prep=(("copy", "$video", "$tmp/v.mp4"),),
        ),
        C(
            "extract.overwrite_good",
            "ok",
            "extract $run_good $video --out $tmp/r.h5 --overwrite",
            prep=GOOD_RESULTS,
        ),
        C(
            "extract.out_missing_folder",
            "either",
            "extract $run_good $video --out $tmp/new/dir/r.h5",
            "new",
        ),
        C(
            "extract.out_under_file",
            "error",
            "extract $run_good $video --out $afile/r.h5",
            "a_regular_file",
        ),
        C("extract.out_is_folder", "error", "extract $run_good $video --out $tmp", "tmp"),
        C("extract.out_txt", "either", "extract $run_good $video --out $tmp/r.txt", "r.txt"),
        C("extract.out_proc", "error", "extract $run_good $video --out /proc/r.h5", "/proc"),
        C(
            "extract.out_read_only",
            "error",
            "extract $run_good $video --out $tmp/ro/r.h5",
            "ro",
            prep=(("rofs", "$tmp/ro"),),
        ),
        # -- evaluation --------------------------------------------------------------------
        C("labels.ground_truth", "ok", "evaluate $results $gt"),
        C("labels.dlc_h5", "ok", "evaluate $results $labels_h5"),
        C("labels.dlc_csv", "ok", "evaluate $results $labels_csv"),
        C("labels.dlc_csv_3index", "ok", "evaluate $results $labels_3idx"),
        C(
            "labels.multi_animal_one",
            "either",
            "evaluate $results $labels_ma",
            "CollectedData_ma.csv",
            "animal",
        ),
        C("labels.nan_cells", "ok", "evaluate $results $labels_nan"),
        C(
            "labels.nan_joint",
            "either",
            "evaluate $results $labels_nan_joint",
            "CollectedData_nanjoint.csv",
        ),
        C("labels.garbage_h5", "error", "evaluate $results $garbage_h5", "garbage.h5"),
        C("labels.text_h5", "error", "evaluate $results $text_h5", "text.h5"),
        C("labels.results_as_labels", "error", "evaluate $results $results", "results.h5"),
        C("labels.garbage_csv", "error", "evaluate $results $labels_garbage_csv", "garbage.csv"),
        C(
            "labels.two_header_rows",
            "error",
            "evaluate $results $labels_2header",
            "CollectedData_2header.csv",
        ),
        C("labels.txt", "error", "evaluate $results $labels_txt", "labels.txt"),
        C("labels.bad_npz", "error", "evaluate $results $labels_npz_bad", "bad.groundtruth.npz"),
        C(
            "labels.missing",
            "error",
            "evaluate $results $work/CollectedData_x.h5",
            "CollectedData_x.h5",
        ),
        C("labels.frames_differ", "error", "evaluate $results $labels_short", "30", "frames"),
        C("eval.results_missing", "error", "evaluate $work/none.h5 $gt", "none.h5"),
        C("eval.results_text", "error", "evaluate $text_h5 $gt", "text.h5"),
        C("eval.results_garbage", "error", "evaluate $garbage_h5 $gt", "garbage.h5"),
        C("eval.results_not_ours", "error", "evaluate $nonresults_h5 $gt", "not_results.h5"),
        C("eval.results_partial", "error", "evaluate $results_partial $gt", "partial.h5"),
        C("eval.results_nan", "either", "evaluate $results_nan $gt", "nan_keypoints.h5"),
        C("eval.video_moved", "either", "evaluate $results_moved $gt", "video.mp4"),
        C("eval.frames_differ", "error", "evaluate $results_long $gt", "600", "frames"),
        # -- export ------------------------------------------------------------------------
        C("export.h5", "ok", "export $results --out $tmp/e.h5"),
        C("export.csv", "ok", "export $results --out $tmp/e.csv"),
        C("export.default_out", "ok", "export $tmp/r.h5", prep=GOOD_RESULTS),
        C("export.nan_keypoints", "ok", "export $results_nan --out $tmp/e.csv"),
        C(
            "export.not_results",
            "error",
            "export $nonresults_h5 --out $tmp/e.h5",
            "not_results.h5",
        ),
        C("export.garbage", "error", "export $garbage_h5 --out $tmp/e.h5", "garbage.h5"),
        C("export.missing", "error", "export $work/none.h5 --out $tmp/e.h5", "none.h5"),
        C("export.partial", "error", "export $results_partial --out $tmp/e.h5", "partial.h5"),
        C("export.bad_extension", "error", "export $results --out $tmp/e.json", "e.json", ".h5"),
        C("export.no_extension", "error", "export $results --out $tmp/e", ".h5"),
        C("export.bad_format", "error", "export $results --to xls --out $tmp/e.h5", "--to"),
        C("export.out_under_file", "error", "export $results --out $afile/e.h5", "a_regular_file"),
        C(
            "export.out_is_folder",
            "error",
            "export $results --out $tmp/d.h5",
            "d.h5",
            prep=(("mkdir", "$tmp/d.h5"),),
        ),
        C("export.out_missing_folder", "either", "export $results --out $tmp/new/e.h5", "new"),
        C(
            "export.bad_results_onto_good",
            "error",
            "export $results_partial --out $tmp/e.h5",
            "partial.h5",
            prep=(("copy", "$dlc_h5", "$tmp/e.h5"),),
            guard=("$tmp/e.h5",),
        ),
        # -- a good run folder must survive failed runs ---------------------------------------
        C(
            "resume.bad_option_keeps_run",
            "error",
            ["train", "$video", "--out", "$tmp/run", *tiny(lr="-1")],
            "lr",
            prep=GOOD_RUN,
            guard=GUARD_RUN,
        ),
        C(
            "resume.bad_video_keeps_run",
            "error",
            f"train $trunc_mp4 --out $tmp/run {t}",
            "truncated.mp4",
            prep=GOOD_RUN,
            guard=GUARD_RUN,
        ),
        C(
            "resume.restart_bad_video_keeps_run",
            "error",
            f"train $text_mp4 --out $tmp/run --restart {t}",
            "notes.mp4",
            prep=GOOD_RUN,
            guard=GUARD_RUN,
        ),
        C(
            "resume.diverged_keeps_run",
            "error",
            ["train", "$video", "--out", "$tmp/run", *tiny(lr="inf", steps="4")],
            "lr",
            prep=GOOD_RUN,
            guard=GUARD_RUN,
        ),
        C(
            "resume.corrupt_checkpoint",
            "error",
            f"train $video --out $tmp/run {t}",
            "checkpoint.pt",
            prep=(("copy", "$ckpt_trunc", "$tmp/run/checkpoint.pt"),),
            guard=GUARD_RUN,
        ),
        # -- resume with changed settings -----------------------------------------------------
        C(
            "resume.other_video",
            "either",
            ["train", "$video2", "--out", "$tmp/run", *tiny(steps="4")],
            "video",
            prep=GOOD_RUN,
            check=recorded_videos("video2"),
        ),
        C(
            "resume.other_lr",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4", lr="0.01")],
            "lr",
            prep=GOOD_RUN,
            check=resumed_lr(0.01),
        ),
        C(
            "resume.other_keypoints",
            "error",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4", keypoints="5")],
            "keypoints",
            prep=GOOD_RUN,
            guard=GUARD_RUN,
        ),
        C(
            "resume.other_image_size",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4", image_size="32")],
            "image_size",
            prep=GOOD_RUN,
            check=stored_config(image_size=32),
        ),
        C(
            "resume.other_batch",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4", batch="2")],
            "batch",
            prep=GOOD_RUN,
            check=stored_config(batch_size=2),
        ),
        C(
            "resume.other_gap",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4", gap="5")],
            "gap",
            prep=GOOD_RUN,
            check=stored_config(frame_gap=5.0),
        ),
        C(
            "resume.other_seed",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4"), "--seed", "7"],
            "seed",
            prep=GOOD_RUN,
            check=stored_config(seed=7),
        ),
        C(
            "resume.more_steps",
            "ok",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="4")],
            prep=GOOD_RUN,
            check=stored_config(steps=4),
        ),
        C(
            "resume.fewer_steps",
            "either",
            ["train", "$video", "--out", "$tmp/run", *tiny(steps="1")],
            "steps",
            prep=GOOD_RUN,
            params={"steps": 2},  # a run already past its steps keeps them
        ),
        C(
            "resume.restart_other_keypoints",
            "ok",
            ["train", "$video", "--out", "$tmp/run", "--restart", *tiny(keypoints="5")],
            prep=GOOD_RUN,
            check=stored_config(n_keypoints=5),
        ),
    ]


def disk_cases() -> list[Case]:
    """A full filesystem (a small tmpfs filled up) under each writer."""
    return [
        C(
            "disk.extract_onto_good",
            "error",
            "extract $run_good $video --out $tmp/mnt/r.h5",
            *FULL_DISK,
            prep=(
                ("tmpfs", "$tmp/mnt", "2"),
                ("copy", "$results", "$tmp/mnt/r.h5"),
                ("fill", "$tmp/mnt"),
            ),
            guard=("$tmp/mnt/r.h5",),
            params={"clean": "$tmp/mnt"},
        ),
        C(
            "disk.train_onto_good",
            "error",
            ["train", "$video", "--out", "$tmp/mnt/run", *tiny(steps="4")],
            *FULL_DISK,
            prep=(
                ("tmpfs", "$tmp/mnt", "14"),
                ("copy", "$run_good", "$tmp/mnt/run"),
                ("fill", "$tmp/mnt"),
            ),
            guard=("$tmp/mnt/run/checkpoint.pt",),
            params={"clean": "$tmp/mnt"},
        ),
        C(
            "disk.train_new_run",
            "error",
            ["train", "$video", "--out", "$tmp/mnt/run", *tiny()],
            *FULL_DISK,
            prep=(("tmpfs", "$tmp/mnt", "2"), ("fill", "$tmp/mnt")),
            params={"clean": "$tmp/mnt"},
        ),
        C(
            "disk.export_onto_good",
            "error",
            "export $results --out $tmp/mnt/e.h5",
            *FULL_DISK,
            prep=(
                ("tmpfs", "$tmp/mnt", "2"),
                ("copy", "$dlc_h5", "$tmp/mnt/e.h5"),
                ("fill", "$tmp/mnt"),
            ),
            guard=("$tmp/mnt/e.h5",),
            params={"clean": "$tmp/mnt"},
        ),
        C(
            "disk.export_csv_onto_good",
            "error",
            "export $results --out $tmp/mnt/e.csv",
            *FULL_DISK,
            prep=(
                ("tmpfs", "$tmp/mnt", "2"),
                ("copy", "$dlc_csv", "$tmp/mnt/e.csv"),
                ("fill", "$tmp/mnt"),
            ),
            guard=("$tmp/mnt/e.csv",),
            params={"clean": "$tmp/mnt"},
        ),
        C(
            "disk.frame_cache",
            "error",
            ["train", "$video", "--out", "$tmp/run", *tiny()],
            *FULL_DISK,
            prep=(
                ("tmpfs", "$tmp/mnt", "2"),
                ("fill", "$tmp/mnt"),
                ("env", "BKIND_CACHE_DIR", "$tmp/mnt/cache"),
            ),
            params={"clean": "$tmp/mnt"},
        ),
    ]


# ==========================================================================================
# Running one case
# ==========================================================================================


class Ctx:
    """A case's folder, environment, fixtures and mounts."""

    def __init__(self, case: Case, fx: Fixtures, work: Path, base_env: dict[str, str]) -> None:
        self.case = case
        self.fx = fx
        self.work = work
        slug = re.sub(r"[^\w.=+-]", "_", case.name)[:80]
        self.tmp = work / "cases" / slug
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.env = dict(base_env)
        self.mounts: list[Path] = []

    def __getitem__(self, key: str) -> str:
        if key == "tmp":
            return str(self.tmp)
        if key == "work":
            return str(self.work)
        return self.fx[key]

    def sub(self, text: str) -> str:
        return string.Template(text).substitute(self)

    def argv(self) -> list[str]:
        raw = self.case.argv if isinstance(self.case.argv, list) else shlex.split(self.case.argv)
        return [self.sub(part) for part in raw]

    def prepare(self) -> None:
        """Run the case's ``prep`` operations in order."""
        for op, *args in self.case.prep:
            args = [self.sub(a) for a in args]
            if op == "copy":
                src, dst = Path(args[0]), Path(args[1])
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
                else:
                    shutil.copy(src, dst)
            elif op == "mkdir":
                Path(args[0]).mkdir(parents=True, exist_ok=True)
            elif op == "write":
                Path(args[0]).write_text(args[1])
            elif op == "env":
                self.env[args[0]] = args[1]
            elif op == "tmpfs":
                self.mount(Path(args[0]), f"size={args[1]}m")
            elif op == "rofs":
                self.read_only(Path(args[0]))
            elif op == "fill":
                fill_disk(Path(args[0]))
            elif op == "fifo":
                os.mkfifo(args[0])
            else:
                raise ValueError(f"unknown prep operation {op}")

    def mount(self, folder: Path, options: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise Skip(f"cannot mount a tmpfs ({res.stderr.strip()[:100] or res.returncode})")
        self.mounts.append(folder)

    def read_only(self, folder: Path) -> None:
        try:
            self.mount(folder, "ro,size=1m")
        except Skip:
            if os.geteuid() == 0:
                raise Skip("root ignores chmod and tmpfs cannot be mounted") from None
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o555)

    def unmount(self) -> None:
        for folder in reversed(self.mounts):
            res = subprocess.run(["umount", str(folder)], capture_output=True)
            if res.returncode != 0:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        self.mounts.clear()

    def cleanup(self, keep: bool) -> None:
        self.unmount()
        for path in [self.tmp, *self.tmp.rglob("*")] if self.tmp.exists() else []:
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.chmod(0o755)
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def output_of(self, res: Result) -> Path:
        """The file a successful command wrote (relative paths from the case folder)."""
        return self.tmp / self._output_of(res)

    def _output_of(self, res: Result) -> Path:
        cmd, argv = res.argv[0], res.argv
        out = option(argv, "--out")
        if cmd == "train":
            return Path(out or "") / "checkpoint.pt"
        if out:
            return Path(out)
        printed = [line for line in res.stdout.splitlines() if line.strip()]
        if printed:
            return Path(printed[-1].strip())
        if cmd == "extract":
            return Path(argv[2]).with_suffix(".bkind.h5")
        return Path("")

    def validate(self, res: Result) -> str | None:
        """None when a command that exited 0 left valid output."""
        cmd, argv = res.argv[0], res.argv
        if cmd == "train":
            steps = self.case.params.get("steps", option(argv, "--steps"))
            return check_checkpoint(self.output_of(res), int(steps) if steps else None)
        if cmd == "extract" and not self.output_of(res).is_dir():  # a folder: many videos
            video = Path(argv[2])
            n = next(
                (FRAMES[k] for k in FRAMES if self.fx.known(k) and _same(self.fx, k, video)), None
            )
            if n is None and video.name == "v.mp4":
                n = FRAMES["video"]
            return check_results(self.output_of(res), n)
        if cmd == "evaluate":
            return check_evaluation(res.stdout)
        if cmd == "export" and option(argv, "--to") in (None, "dlc"):
            n = 60 if "long" not in argv[1] else 600
            return check_export(self.output_of(res), n)
        return None


def _same(fx: Fixtures, key: str, path: Path) -> bool:
    built = fx.built(key)
    return built is not None and Path(built).resolve() == path.resolve()


def fill_disk(folder: Path) -> None:
    """Fill the filesystem of ``folder`` with a file named ``filler``."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        for size in (1 << 16, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    if handle.write(block) < size:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break


def classify(case: Case, ctx: Ctx, res: Result, before: dict[str, str | None]) -> Outcome:
    """What one command did against what the case expects."""
    if case.marker and Path(ctx.sub(case.marker)).exists():
        return Outcome("code_executed", f"rc={res.rc}: the payload's marker exists")
    after = {path: sha(Path(path)) for path in before}
    changed = [Path(p).name for p, digest in before.items() if after[p] != digest]
    failed = res.rc != 0
    if res.timed_out:
        if case.params.get("slow_if_timeout"):
            return Outcome("too_slow", f"a 2-step run did not end within {case.timeout:.0f} s")
        return Outcome("timeout", f"no end after {case.timeout:.0f} s")
    if has_traceback(res.stderr):
        return Outcome("traceback", f"rc={res.rc}: {traceback_summary(res.stderr)}")
    if changed and (failed or case.expect == "error"):
        return Outcome("data_lost", f"rc={res.rc}; changed or removed: {changed}")
    if res.rc is not None and res.rc < 0:
        return Outcome(
            "crash",
            f"killed by signal {-res.rc}: " + " | ".join(message_of(res.stderr)[-2:])[:200],
        )
    names = [ctx.sub(n) for n in case.names]
    names = [Path(n).name if "/" in n and not n.startswith("/proc") else n for n in names]
    if failed:
        clear, text = clear_message(res.stderr, names)
        if case.expect == "ok":
            return Outcome("refused_valid", f"rc={res.rc}: {text}")
        return Outcome("clear_error" if clear else "unclear_error", f"rc={res.rc}: {text}")
    problem = ctx.validate(res)
    if case.expect == "error":
        return Outcome(
            "silent_wrong_output",
            "exit 0 where an error was expected" + (f"; {problem}" if problem else ""),
        )
    if problem:
        return Outcome("silent_wrong_output", problem)
    if case.check is not None:
        problem = case.check(ctx, res)
        if problem:
            kind, _, rest = problem.partition(": ")
            if kind == "too_slow":
                return Outcome("too_slow", rest)
            return Outcome("silent_wrong_output", problem)
    return Outcome("ok", "")


def run_simple(ctx: Ctx, case: Case) -> Outcome:
    """One command: prepare, hash the guarded files, run, classify, look for leftovers."""
    ctx.prepare()
    if case.setup is not None:
        case.setup(ctx)
    before = {ctx.sub(g): sha(Path(ctx.sub(g))) for g in case.guard}
    res = run_cli(ctx.argv(), ctx.env, ctx.tmp, case.timeout, case.memory)
    outcome = classify(case, ctx, res, before)
    if outcome.kind in ("ok", "clear_error"):
        clean = Path(ctx.sub(case.params.get("clean", "$tmp")))
        left = [x for x in leftovers(clean) if not x.endswith(".lock")]
        if left:
            return Outcome("leftovers", f"{outcome.kind} but left {left[:4]}")
    return outcome


# ==========================================================================================
# Kills
# ==========================================================================================

SIGNALS = {
    "int": signal.SIGINT,
    "term": signal.SIGTERM,
    "hup": signal.SIGHUP,
    "kill": signal.SIGKILL,
}


def _ckpt_step(path: Path) -> str:
    try:
        return str(load_torch(path).get("step"))
    except Exception:
        return "none" if not path.exists() else "unreadable"


def run_kill_train(ctx: Ctx, case: Case) -> Outcome:
    """Signal a training at random moments, resume to the end, compare with no kill."""
    reference = Path(ctx.fx["kill_ref"])
    startup = ctx.fx.timings.get("kill_startup", 3.0)
    total = ctx.fx.timings.get("kill_total", 8.0)
    rng = random.Random(case.params["seed"])
    run = ctx.tmp / "run"
    argv = ["train", ctx.fx["video"], "--out", str(run), *tiny(steps=str(KILL_STEPS))]
    notes, tracebacks = [], []
    for sig_name in case.params["signals"]:
        delay = rng.uniform(0.5 * startup, 0.95 * total)
        proc = Proc(argv, ctx.env, ctx.tmp)
        time.sleep(delay)
        if not proc.running():
            notes.append(f"{sig_name}@{delay:.1f}s: already done")
        proc.send(SIGNALS[sig_name])
        res = proc.wait(60)
        if res.timed_out:
            return Outcome(
                "timeout", f"no exit within 60 s of SIG{sig_name.upper()} at {delay:.1f}s"
            )
        notes.append(
            f"SIG{sig_name.upper()}@{delay:.1f}s rc={res.rc} step={_ckpt_step(run / 'checkpoint.pt')}"
        )
        if has_traceback(res.stderr):
            tracebacks.append(traceback_summary(res.stderr))
    final = run_cli(argv, ctx.env, ctx.tmp, 180)
    story = "; ".join(notes)
    if final.timed_out:
        return Outcome("timeout", f"resume did not end; {story}")
    if final.rc != 0:
        kind = "traceback" if has_traceback(final.stderr) else "not_bit_exact"
        text = (
            traceback_summary(final.stderr)
            if kind == "traceback"
            else " ".join(message_of(final.stderr))[:200]
        )
        return Outcome(kind, f"resume failed (rc {final.rc}): {text}; {story}")
    differ = models_equal(run / "checkpoint.pt", reference)
    if differ:
        return Outcome("not_bit_exact", f"{differ}; {story}")
    if tracebacks:
        return Outcome("traceback", f"on the signal: {tracebacks[0]}; {story}")
    left = [x for x in leftovers(run) if not x.endswith(".lock")]
    if left:
        return Outcome("leftovers", f"{left[:3]}; {story}")
    return Outcome("kill_resumed_bit_exact", story)


def run_kill_cache(ctx: Ctx, case: Case) -> Outcome:
    """Signal a training while it caches frames; the rerun must work and leave no orphans."""
    reference = Path(ctx.fx["cache_ref"])
    cache = ctx.tmp / "cache"
    ctx.env["BKIND_CACHE_DIR"] = str(cache)
    run = ctx.tmp / "run"
    argv = ["train", ctx.fx["long"], "--out", str(run), *tiny()]
    rng = random.Random(case.params["seed"])
    sig_name = case.params["signals"][0]
    proc = Proc(argv, ctx.env, ctx.tmp)
    seen = proc.wait_for(r"Caching frames", 60)
    time.sleep(rng.uniform(0.0, 0.05))
    caching = "Training " not in proc.stderr
    proc.send(SIGNALS[sig_name])
    res = proc.wait(60)
    if res.timed_out:
        return Outcome("timeout", f"no exit within 60 s of SIG{sig_name.upper()}")
    story = f"SIG{sig_name.upper()} {'while caching' if seen and caching else 'after caching'} rc={res.rc}; left by the kill: {leftovers(cache)[:2]}"
    final = run_cli(argv, ctx.env, ctx.tmp, 180)
    if final.rc != 0:
        text = (
            traceback_summary(final.stderr)
            if has_traceback(final.stderr)
            else " ".join(message_of(final.stderr))[:200]
        )
        return Outcome(
            "traceback" if has_traceback(final.stderr) else "not_bit_exact",
            f"rerun failed: {text}; {story}",
        )
    differ = models_equal(run / "checkpoint.pt", reference)
    if differ:
        return Outcome("not_bit_exact", f"{differ}; {story}")
    if has_traceback(res.stderr):
        return Outcome("traceback", f"on the signal: {traceback_summary(res.stderr)}; {story}")
    left = leftovers(cache)
    if left:
        return Outcome("leftovers", f"orphans in the cache after the rerun: {left[:3]}; {story}")
    return Outcome("kill_resumed_bit_exact", story)


def run_kill_extract(ctx: Ctx, case: Case) -> Outcome:
    """Signal an extraction mid-way; the rerun must equal an uninterrupted extraction."""
    reference = Path(ctx.fx["results_long"])
    duration = ctx.fx.timings.get("extract_long", 1.5)
    out = ctx.tmp / "r.h5"
    argv = ["extract", ctx.fx["run_good"], ctx.fx["long"], "--out", str(out)]
    rng = random.Random(case.params["seed"])
    notes, tracebacks = [], []
    for sig_name in case.params["signals"]:
        proc = Proc(argv, ctx.env, ctx.tmp)
        proc.wait_for(r"\d+%\|", 60)
        delay = rng.uniform(0.0, 0.8 * duration)
        time.sleep(delay)
        proc.send(SIGNALS[sig_name])
        res = proc.wait(60)
        if res.timed_out:
            return Outcome("timeout", f"no exit within 60 s of SIG{sig_name.upper()}")
        part = [x for x in leftovers(ctx.tmp)]
        notes.append(f"SIG{sig_name.upper()}+{delay:.1f}s rc={res.rc} left={part[:2]}")
        if has_traceback(res.stderr):
            tracebacks.append(traceback_summary(res.stderr))
        if res.rc != 0 and out.exists() and check_results(out, 600):
            return Outcome(
                "data_lost", f"a damaged results file is left under the final name; {notes}"
            )
    # --overwrite: a late signal may land once the file is finished (an unfinished one
    # resumes from its .part either way)
    final = run_cli([*argv, "--overwrite"], ctx.env, ctx.tmp, 180)
    story = "; ".join(notes)
    if final.rc != 0:
        text = (
            traceback_summary(final.stderr)
            if has_traceback(final.stderr)
            else " ".join(message_of(final.stderr))[:200]
        )
        return Outcome(
            "traceback" if has_traceback(final.stderr) else "not_bit_exact",
            f"rerun failed: {text}; {story}",
        )
    differ = check_results(out, 600) or results_equal(out, reference)
    if differ:
        return Outcome("not_bit_exact", f"{differ}; {story}")
    if tracebacks:
        return Outcome("traceback", f"on the signal: {tracebacks[0]}; {story}")
    left = leftovers(ctx.tmp)
    if left:
        return Outcome("leftovers", f"after the rerun: {left[:3]}; {story}")
    return Outcome("kill_resumed_bit_exact", story)


def run_kill_export(ctx: Ctx, case: Case) -> Outcome:
    """Signal an export; no partial file under the final name, the rerun is complete."""
    import pandas as pd

    reference = Path(ctx.fx["export_ref"])
    duration = ctx.fx.timings.get("export_long", 2.0)
    out = ctx.tmp / "e.csv"
    argv = ["export", ctx.fx["results_long"], "--out", str(out)]
    rng = random.Random(case.params["seed"])
    sig_name = case.params["signals"][0]
    delay = rng.uniform(0.7 * duration, 1.0 * duration)  # the write is at the end
    proc = Proc(argv, ctx.env, ctx.tmp)
    time.sleep(delay)
    proc.send(SIGNALS[sig_name])
    res = proc.wait(60)
    story = f"SIG{sig_name.upper()}@{delay:.2f}s rc={res.rc} left={leftovers(ctx.tmp)[:2]}"
    if res.timed_out:
        return Outcome("timeout", f"no exit within 60 s; {story}")
    if out.exists() and check_export(out, 600):
        return Outcome(
            "silent_wrong_output",
            f"partial file under the final name: {check_export(out, 600)}; {story}",
        )
    final = run_cli([*argv, "--overwrite"], ctx.env, ctx.tmp, 120)  # the kill may come late
    if final.rc != 0:
        return Outcome(
            "not_bit_exact", f"rerun failed: {' '.join(message_of(final.stderr))[:200]}; {story}"
        )
    first = pd.read_csv(out, header=[0, 1, 2], index_col=0)
    second = pd.read_csv(reference, header=[0, 1, 2], index_col=0)
    if not first.equals(second):
        return Outcome(
            "not_bit_exact", f"rerun's export differs from an uninterrupted one; {story}"
        )
    if has_traceback(res.stderr):
        return Outcome("traceback", f"on the signal: {traceback_summary(res.stderr)}; {story}")
    left = leftovers(ctx.tmp)
    if left:
        return Outcome("leftovers", f"after the rerun: {left[:3]}; {story}")
    return Outcome("kill_resumed_bit_exact", story)


def run_determinism(ctx: Ctx, case: Case) -> Outcome:
    """Two uninterrupted runs of one config and seed must be bit-exact (kills rely on it)."""
    differ = models_equal(Path(ctx.fx["kill_ref"]), Path(ctx.fx["kill_ref2"]))
    return (
        Outcome("silent_wrong_output", f"two identical runs differ: {differ}")
        if differ
        else Outcome("ok")
    )


# ==========================================================================================
# Races
# ==========================================================================================


class Reader(threading.Thread):
    """Loads a checkpoint in a loop; records every failure."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.loads = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                load_torch(self.path)
                self.loads += 1
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {str(exc)[:100]}")
            time.sleep(0.03)


def run_two_trains(ctx: Ctx, case: Case) -> Outcome:
    """Two trainings on one run folder, a reader loading its checkpoint meanwhile."""
    run = ctx.tmp / "run"
    shutil.copytree(ctx.fx["run_good"], run, ignore=shutil.ignore_patterns(".lock"))
    steps = 30
    argv = ["train", ctx.fx["video"], "--out", str(run), *tiny(steps=str(steps))]
    reader = Reader(run / "checkpoint.pt")
    reader.start()
    first = Proc(argv, ctx.env, ctx.tmp)
    time.sleep(0.2)
    second = Proc(argv, ctx.env, ctx.tmp)
    results = [first.wait(240), second.wait(240)]
    time.sleep(0.3)
    reader.stop.set()
    reader.join(10)
    pids = [first.pid, second.pid]
    rcs = [r.rc for r in results]
    story = f"rc={rcs}, reader loaded {reader.loads} times"
    if any(r.timed_out for r in results):
        return Outcome("timeout", story)
    for r in results:
        if has_traceback(r.stderr):
            return Outcome("traceback", f"{traceback_summary(r.stderr)}; {story}")
    if reader.failures:
        return Outcome(
            "data_lost", f"reader failed {len(reader.failures)}x: {reader.failures[0]}; {story}"
        )
    problem = check_checkpoint(run / "checkpoint.pt", steps)
    if problem:
        return Outcome(
            "silent_wrong_output" if 0 in rcs else "unclear_error", f"{problem}; {story}"
        )
    if rcs == [0, 0]:
        return Outcome("ok", f"both finished; {story}")
    if 0 not in rcs:
        return Outcome("unclear_error", f"neither finished; {story}")
    loser = 0 if rcs[0] != 0 else 1
    text = " ".join(message_of(results[loser].stderr))
    if str(pids[1 - loser]) not in text:
        return Outcome(
            "unclear_error", f"the refusal does not name pid {pids[1 - loser]}: {text[:200]}"
        )
    return Outcome("clear_error", f"second refused: {text[:200]}")


def run_two_extracts(ctx: Ctx, case: Case) -> Outcome:
    """Two extractions onto one results file at once."""
    out = ctx.tmp / "r.h5"
    argv = ["extract", ctx.fx["run_good"], ctx.fx["long"], "--out", str(out)]
    first = Proc(argv, ctx.env, ctx.tmp)
    time.sleep(0.3)
    second = Proc(argv, ctx.env, ctx.tmp)
    results = [first.wait(180), second.wait(180)]
    rcs = [r.rc for r in results]
    for r in results:
        if has_traceback(r.stderr):
            return Outcome("traceback", f"{traceback_summary(r.stderr)}; rc={rcs}")
    if 0 not in rcs:
        texts = [" ".join(message_of(r.stderr))[:160] for r in results]
        return Outcome("unclear_error", f"neither finished: rc={rcs}: {texts}")
    differ = check_results(out, 600) or results_equal(out, Path(ctx.fx["results_long"]))
    if differ:
        return Outcome("silent_wrong_output", f"{differ}; rc={rcs}")
    left = leftovers(ctx.tmp)
    if left:
        return Outcome("leftovers", f"{left[:3]}; rc={rcs}")
    if rcs != [0, 0]:
        loser = results[0 if rcs[0] else 1]
        clear, text = clear_message(loser.stderr, ["r.h5"])
        return Outcome("clear_error" if clear else "unclear_error", f"rc={rcs}: {text}")
    return Outcome("ok", f"rc={rcs}")


def run_two_caches(ctx: Ctx, case: Case) -> Outcome:
    """Two trainings building the same fresh frame cache at once."""
    ctx.env["BKIND_CACHE_DIR"] = str(ctx.tmp / "cache")
    procs = [
        Proc(
            ["train", ctx.fx["long"], "--out", str(ctx.tmp / f"run{i}"), *tiny()], ctx.env, ctx.tmp
        )
        for i in range(2)
    ]
    results = [p.wait(240) for p in procs]
    rcs = [r.rc for r in results]
    for r in results:
        if has_traceback(r.stderr):
            return Outcome("traceback", f"{traceback_summary(r.stderr)}; rc={rcs}")
    if rcs != [0, 0]:
        return Outcome(
            "refused_valid",
            f"rc={rcs}: {' '.join(message_of(results[0].stderr or results[1].stderr))[:200]}",
        )
    for i in range(2):
        differ = models_equal(ctx.tmp / f"run{i}" / "checkpoint.pt", Path(ctx.fx["cache_ref"]))
        if differ:
            return Outcome("silent_wrong_output", f"run{i}: {differ}")
    left = leftovers(ctx.tmp / "cache")
    if left:
        return Outcome("leftovers", f"{left[:3]}")
    return Outcome("ok", "")


def run_extract_while_training(ctx: Ctx, case: Case) -> Outcome:
    """Extract from a run folder while trainings rewrite its checkpoint.

    Every checkpoint version is copied once its training has ended; each extraction's
    recorded ``checkpoint_sha256`` must be one of them, and re-extracting with that
    version must give the same keypoints (the hash names the weights really used).
    """
    import h5py

    run = ctx.tmp / "run"
    shutil.copytree(ctx.fx["run_good"], run, ignore=shutil.ignore_patterns(".lock"))
    kept = ctx.tmp / "versions"
    kept.mkdir()
    shutil.copy(run / "checkpoint.pt", kept / "v0.pt")
    versions = {sha(kept / "v0.pt"): kept / "v0.pt"}
    outputs = []
    for i in range(1, 4):
        trainer = Proc(
            ["train", ctx.fx["video"], "--out", str(run), *tiny(steps=str(2 + 2 * i))],
            ctx.env,
            ctx.tmp,
        )
        trainer.wait_for(r"Training ", 60)
        for j in range(2):
            out = ctx.tmp / f"r{i}_{j}.h5"
            res = run_cli(
                ["extract", str(run), ctx.fx["video"], "--out", str(out)], ctx.env, ctx.tmp
            )
            if res.rc != 0:
                kind = "traceback" if has_traceback(res.stderr) else "unclear_error"
                text = (
                    traceback_summary(res.stderr)
                    if kind == "traceback"
                    else " ".join(message_of(res.stderr))
                )
                return Outcome(kind, f"extraction {i}.{j} during training failed: {text[:200]}")
            outputs.append(out)
        done = trainer.wait(180)
        if done.rc != 0:
            return Outcome(
                "traceback" if has_traceback(done.stderr) else "unclear_error",
                f"training {i} failed: {' '.join(message_of(done.stderr))[:200]}",
            )
        copy = kept / f"v{i}.pt"
        shutil.copy(run / "checkpoint.pt", copy)
        versions[sha(copy)] = copy
    for out in outputs:
        problem = check_results(out, FRAMES["video"])
        if problem:
            return Outcome("silent_wrong_output", f"{out.name}: {problem}")
        with h5py.File(out, "r") as f:
            recorded = f.attrs.get("checkpoint_sha256")
        if recorded not in versions:
            return Outcome(
                "silent_wrong_output",
                f"{out.name}: recorded checkpoint_sha256 matches no checkpoint version",
            )
        again = ctx.tmp / f"again_{recorded[:12]}.h5"  # one re-extraction per version
        if not again.exists():
            res = run_cli(
                ["extract", str(versions[recorded]), ctx.fx["video"], "--out", str(again)],
                ctx.env,
                ctx.tmp,
            )
            if res.rc != 0:
                message = " ".join(message_of(res.stderr))[:200]
                return Outcome("unclear_error", f"re-extraction failed: {message}")
        differ = results_equal(out, again)
        if differ:
            return Outcome(
                "silent_wrong_output",
                f"{out.name}: recorded hash names other weights than used ({differ})",
            )
    return Outcome("ok", f"{len(outputs)} extractions, {len(versions)} checkpoint versions")


def special_cases() -> list[Case]:
    """Kills and races: each has its own runner and runs alone."""
    cases = [
        Case(
            "kill.determinism",
            "ok",
            runner=run_determinism,
            needs=("kill_ref", "kill_ref2"),
            solo=True,
        )
    ]
    plans = [
        ("int", ("int",)),
        ("term", ("term",)),
        ("hup", ("hup",)),
        ("kill", ("kill",)),
        ("int_then_term", ("int", "term")),
        ("int_then_hup", ("int", "hup")),
        ("int_then_kill", ("int", "kill")),
        ("int_twice", ("int", "int")),
    ]
    for seed, (label, signals) in enumerate(plans):
        cases.append(
            Case(
                f"kill.train.{label}",
                "ok",
                runner=run_kill_train,
                params={"seed": seed, "signals": signals},
                needs=("kill_ref", "video"),
                solo=True,
            )
        )
    for seed, label in enumerate(("int", "term", "kill")):
        cases.append(
            Case(
                f"kill.cache.{label}",
                "ok",
                runner=run_kill_cache,
                params={"seed": seed, "signals": (label,)},
                needs=("cache_ref", "long"),
                solo=True,
            )
        )
    for seed, (label, signals) in enumerate(
        [
            ("int", ("int",)),
            ("term", ("term",)),
            ("hup", ("hup",)),
            ("kill", ("kill",)),
            ("kill_twice", ("kill", "kill")),
        ]
    ):
        cases.append(
            Case(
                f"kill.extract.{label}",
                "ok",
                runner=run_kill_extract,
                params={"seed": seed, "signals": signals},
                needs=("results_long", "run_good", "long"),
                solo=True,
            )
        )
    for seed, label in enumerate(("int", "term", "kill")):
        cases.append(
            Case(
                f"kill.export.{label}",
                "ok",
                runner=run_kill_export,
                params={"seed": seed, "signals": (label,)},
                needs=("export_ref", "results_long"),
                solo=True,
            )
        )
    cases += [
        Case(
            "conc.two_trains_one_folder",
            "either",
            runner=run_two_trains,
            needs=("run_good", "video"),
            solo=True,
        ),
        Case(
            "conc.two_extracts_one_file",
            "either",
            runner=run_two_extracts,
            needs=("results_long", "run_good", "long"),
            solo=True,
        ),
        Case(
            "conc.two_trains_one_cache",
            "ok",
            runner=run_two_caches,
            needs=("cache_ref", "long"),
            solo=True,
        ),
        Case(
            "conc.extract_while_training",
            "ok",
            runner=run_extract_while_training,
            needs=("run_good", "video"),
            solo=True,
        ),
    ]
    return cases


def all_cases() -> list[Case]:
    from faults_probe import probe_cases

    return [
        *generated_cases(),
        *file_cases(),
        *disk_cases(),
        *special_cases(),
        *probe_cases(),
    ]


# ==========================================================================================
# Main
# ==========================================================================================


def run_case(case: Case, fx: Fixtures, work: Path, env: dict[str, str], keep: bool) -> Outcome:
    """Run one case, whatever happens (the harness never crashes)."""
    ctx = None
    try:
        ctx = Ctx(case, fx, work, env)
        runner = case.runner or run_simple
        return runner(ctx, case)
    except Skip as exc:
        return Outcome("skipped", str(exc))
    except FixtureError as exc:
        return Outcome("fixture_failed", str(exc)[:300])
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(
            "harness_error", f"{type(exc).__name__}: {exc} (faults.py:{where.lineno})"[:300]
        )
    finally:
        if ctx is not None:
            with contextlib.suppress(Exception):
                ctx.cleanup(keep)


def fixtures_of(case: Case, fx: Fixtures) -> list[str]:
    names = list(case.needs)
    for text in case.templates():
        names += [n for n in re.findall(r"\$(\w+)", text) if fx.known(n)]
    return list(dict.fromkeys(names))


def summarise(rows: list[tuple[Case, Outcome]], wall: float, notes: list[str]) -> dict[str, Any]:
    def count(*kinds: str) -> int:
        return sum(1 for _, outcome in rows if outcome.kind in kinds)

    kills = [
        o
        for c, o in rows
        if c.name.startswith("kill.") and c.name != "kill.determinism" and o.kind != "skipped"
    ]
    summary: dict[str, Any] = {
        "benchmark": "faults",
        "cases": len(rows),
        "clear_errors": count("clear_error"),
        "tracebacks": count("traceback"),
        "silent_wrong_outputs": count("silent_wrong_output"),
        "kills": len(kills),
        "kills_resumed_bit_exact": sum(o.kind == "kill_resumed_bit_exact" for o in kills),
        "data_lost": count("data_lost"),
        "code_executions": count("code_executed"),
        "ok": count("ok"),
        "unclear_errors": count("unclear_error"),
        "refused_valid": count("refused_valid"),
        "not_bit_exact": count("not_bit_exact"),
        "leftovers": count("leftovers"),
        "timeouts": count("timeout"),
        "too_slow": count("too_slow"),
        "crashes": count("crash"),
        "fixture_failed": count("fixture_failed"),
        "harness_errors": count("harness_error"),
        "skipped": count("skipped"),
        "wall_s": round(wall, 1),
        "notes": notes + [f"skipped {c.name}: {o.detail}" for c, o in rows if o.kind == "skipped"],
        "failures": [
            {"case": c.name, "kind": o.kind, "detail": o.detail}
            for c, o in rows
            if o.kind not in PASS_KINDS
        ],
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated prefixes of case names")
    parser.add_argument("--work", help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--jobs", type=int, default=2, help="simple cases run at once")
    parser.add_argument("--list", action="store_true", help="print the case names and stop")
    args = parser.parse_args(argv)

    cases = all_cases()
    if args.only:
        prefixes = tuple(p for p in args.only.split(",") if p)
        cases = [c for c in cases if c.name.startswith(prefixes)]
    if args.list:
        for case in cases:
            print(f"{case.name}\t{case.expect}")
        return 0

    start = time.monotonic()
    made_work = args.work is None
    work = Path(args.work or tempfile.mkdtemp(prefix="bkind-faults-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for owned in ("fx", "cases", "cache"):  # a reused work folder starts afresh
        shutil.rmtree(work / owned, ignore_errors=True)
    env = os.environ | {
        "BKIND_CACHE_DIR": str(work / "cache"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTHONWARNINGS", None)
    from faults_probe import ProbeFixtures

    fx = ProbeFixtures(work, env)
    notes: list[str] = []
    rows: list[tuple[Case, Outcome]] = []
    try:
        import torch

        torch.set_num_threads(1)
        wanted = list(dict.fromkeys(n for c in cases for n in fixtures_of(c, fx)))
        print(f"building {len(wanted)} fixtures under {work}", file=sys.stderr)
        for name in wanted:
            t0 = time.monotonic()
            try:
                fx[name]
            except FixtureError as exc:
                notes.append(str(exc)[:300])
            print(f"  fixture {name}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        digests = fx.digests()
        total = len(cases)
        done = [0]
        lock = threading.Lock()

        def one(case: Case) -> tuple[Case, Outcome]:
            t0 = time.monotonic()
            outcome = run_case(case, fx, work, env, args.keep)
            with lock:
                done[0] += 1
                mark = "  " if outcome.kind in PASS_KINDS else "!!"
                print(
                    f"{mark}[{done[0]}/{total}] {case.name}: {outcome.kind} "
                    f"({time.monotonic() - t0:.1f} s) {outcome.detail[:160]}",
                    file=sys.stderr,
                )
            return case, outcome

        simple = [c for c in cases if not c.solo]
        solo = [c for c in cases if c.solo]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            rows += list(pool.map(one, simple))
        for case in solo:
            rows.append(one(case))
        changed = [Path(p).name for p, d in digests.items() if sha(Path(p)) != d]
        rows.append(
            (
                Case("fixtures.intact"),
                Outcome("data_lost", f"fixtures changed by the cases: {changed[:5]}")
                if changed
                else Outcome("ok", ""),
            )
        )
        if not args.only:
            left = leftovers(work / "cache")
            rows.append(
                (
                    Case("fixtures.shared_cache_clean"),
                    Outcome("leftovers", f"{left[:4]}") if left else Outcome("ok", ""),
                )
            )
    finally:
        if made_work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summarise(rows, time.monotonic() - start, notes)))
    return 0


if __name__ == "__main__":
    sys.modules["faults"] = sys.modules["__main__"]  # faults_probe imports this module
    sys.exit(main())
