"""Many videos on a dask cluster: one task per video chunk, results merged per video.

Each video is cut into chunks of ``chunk_frames`` consecutive frames (default
:data:`~bkind_model.config.TASK_FRAMES`); a task decodes one
chunk and runs the model over it (one torch thread per worker), and writes its arrays
atomically to ``.<results name>.chunks/<start>-<stop>.npz`` beside the results file.
When every chunk of a video is there, the client merges them into the results file
(:class:`~bkind_model.io.results.ResultsWriter`, which adds the calibrated likelihood)
and removes the chunk folder. A re-run skips results files and chunks that the same
checkpoint finished (the chunk folder names its checkpoint's SHA-256; work of another
checkpoint, a model trained since, is done again); a worker that dies mid-chunk leaves no
chunk file, and dask runs the task again (``retries``). A chunk is used only when it reads
back whole: its arrays, their shapes for its frame range, finite values and the SHA-256 it
was written with (of its checkpoint, range and arrays); a truncated, zeroed or foreign
chunk file is made again. Each chunk finds the animal
against the whole video's background, as :func:`~bkind_model.infer.extraction.extract`
does, so chunks give the same keypoints as one sequential pass wherever the animal is
found.

``dask.distributed`` comes with the ``cluster`` extra; by default a ``LocalCluster`` with
one single-threaded worker per CPU core runs the tasks, or pass a ``Client`` of a cluster.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import socket
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import torch

from bkind_model.config import TASK_FRAMES
from bkind_model.errors import ConfigError, MissingDependencyError
from bkind_model.infer.extraction import check_frame_size, results_metadata
from bkind_model.infer.predictor import Predictor
from bkind_model.io.atomic import atomic_path, ensure_folder
from bkind_model.io.results import KeypointResult, ResultsError, ResultsWriter, video_fingerprint
from bkind_model.io.video import VideoSource, open_video

#: Times dask runs a failed chunk again (a worker that died, a lost connection).
RETRIES = 2
#: The environment local workers start with: dask's default but for its
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which switches off glibc's adaptive mmap threshold so
#: that every frame batch is a fresh mmap; extraction in a worker ran 40% slower with it.
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
#: Seconds to wait for the dask scheduler of ``--scheduler`` to answer.
CONNECT_TIMEOUT_S = 10.0
#: A chunk's arrays: each one's shape for ``n`` frames and ``k`` keypoints, its dtype kind.
_SHAPES = {
    "keypoints": (lambda n, k: (n, k, 2), "f"),
    "confidence": (lambda n, k: (n, k), "f"),
    "covariance": (lambda n, k: (n, k, 2, 2), "f"),
    "on_animal": (lambda n, k: (n, k), "b"),
}
_ARRAYS = tuple(_SHAPES)


@dataclass(frozen=True)
class Chunk:
    """Frames ``start`` to ``stop - 1`` of one video, and where its arrays go."""

    video: Path
    start: int
    stop: int
    folder: Path

    @property
    def path(self) -> Path:
        """The chunk's ``.npz`` file."""
        return self.folder / f"{self.start:09d}-{self.stop:09d}.npz"


def chunk_folder(out_path: Path) -> Path:
    """Where the chunks of the results file ``out_path`` are kept until merged."""
    return out_path.with_name(f".{out_path.name}.chunks")


def plan_chunks(video: Path, n_frames: int, out_path: Path, chunk_frames: int) -> list[Chunk]:
    """Consecutive chunks covering frames ``0 .. n_frames - 1`` exactly once."""
    folder = chunk_folder(out_path)
    return [
        Chunk(video, start, min(start + chunk_frames, n_frames), folder)
        for start in range(0, n_frames, chunk_frames)
    ]


def extract_chunk(checkpoint: Path, chunk: Chunk, sha256: str, batch_size: int = 64) -> Path:
    """Keypoints of one chunk, written atomically to :attr:`Chunk.path` (a task).

    Returns at once when the chunk file of the checkpoint with ``sha256`` is there and
    whole (a re-run); a damaged one is made again.
    """
    if read_chunk(chunk, sha256) is not None:
        return chunk.path
    torch.set_num_threads(1)
    predictor, source = _worker_model(checkpoint, chunk.video)
    predictor.restart_stream()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS}
    for start, frames in source.iter_chunks(batch_size, start=chunk.start):
        frames = frames[: chunk.stop - start]
        out = predictor.predict(frames)
        for name in _ARRAYS:
            parts[name].append(getattr(out, name))
        if start + len(frames) >= chunk.stop:
            break
    return write_chunk(chunk, sha256, {name: np.concatenate(parts[name]) for name in _ARRAYS})


def write_chunk(chunk: Chunk, sha256: str, arrays: dict[str, np.ndarray]) -> Path:
    """Write a chunk's arrays atomically, with the digest :func:`read_chunk` checks.

    Parameters
    ----------
    chunk : Chunk
        Where the arrays belong.
    sha256 : str
        The checkpoint's SHA-256.
    arrays : dict of str to ndarray
        ``keypoints (n, K, 2)``, ``confidence (n, K)``, ``covariance (n, K, 2, 2)``
        (floats) and ``on_animal (n, K)`` (bool) of the chunk's ``n`` frames.

    Returns
    -------
    Path
        :attr:`Chunk.path`.
    """
    ensure_folder(chunk.folder)
    with atomic_path(chunk.path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            digest=np.array(_digest(chunk, sha256, arrays)),
            keypoints=arrays["keypoints"],
            confidence=arrays["confidence"],
            covariance=arrays["covariance"],
            on_animal=arrays["on_animal"],
        )
    return chunk.path


def read_chunk(chunk: Chunk, sha256: str) -> dict[str, np.ndarray] | None:
    """The arrays of a chunk file that reads back whole, else None.

    Whole means: exactly the arrays :func:`write_chunk` writes, of the shapes for the
    chunk's frame range, finite, and with the digest of the checkpoint ``sha256``, the
    range and the arrays (a truncated, zeroed, edited or moved chunk has another).
    """
    try:
        with np.load(chunk.path) as data:  # no pickles: object arrays raise ValueError
            if sorted(data.files) != sorted([*_ARRAYS, "digest"]):
                return None
            arrays = {name: data[name] for name in _ARRAYS}
            digest = data["digest"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    keypoints = arrays["keypoints"]
    k = keypoints.shape[1] if keypoints.ndim == 3 else -1
    for name, (shape, kind) in _SHAPES.items():
        array = arrays[name]
        if array.shape != shape(chunk.stop - chunk.start, k) or array.dtype.kind != kind:
            return None
        if kind == "f" and not np.isfinite(array).all():
            return None
    if digest.shape != () or str(digest) != _digest(chunk, sha256, arrays):
        return None
    return arrays


def _digest(chunk: Chunk, sha256: str, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of a chunk's checkpoint, frame range and arrays (dtypes, shapes, bytes)."""
    digest = hashlib.sha256(f"{sha256}|{chunk.start}|{chunk.stop}".encode())
    for name in _ARRAYS:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=2)
def _worker_model(checkpoint: Path, video: Path) -> tuple[Predictor, VideoSource]:
    """The model and video of a worker's chunks, loaded once per (checkpoint, video).

    Finding the background costs a seek per sampled frame: the chunks of one video that a
    worker runs share it.
    """
    predictor = Predictor(checkpoint, "cpu")
    source = open_video(video, decoder_threads=1)  # one of many workers on the machine
    predictor.use_background_of(source)
    return predictor, source


def is_finished(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a finished results file of the checkpoint with ``sha256``."""
    try:
        result = KeypointResult.load(path)
    except ResultsError:
        return False
    return result.metadata.get("checkpoint_sha256") == sha256


def keep_chunks_of(folder: Path, sha256: str) -> None:
    """Make ``folder`` the chunk folder of the checkpoint ``sha256``.

    Chunks another checkpoint left (a cancelled run before the model was trained again)
    are removed, so a results file never mixes two models.
    """
    marker = folder / "checkpoint.sha256"
    if folder.exists():
        try:
            same = marker.read_text().strip() == sha256
        except OSError:
            same = False
        if same:
            return
        shutil.rmtree(folder)
    ensure_folder(folder)
    with atomic_path(marker) as tmp:
        tmp.write_text(sha256)


def merge_chunks(predictor: Predictor, video: Path, out_path: Path, chunks: list[Chunk]) -> Path:
    """Write the results file of ``video`` from its chunks, then remove them.

    Raises
    ------
    ResultsError
        A chunk was damaged after its task wrote it; it is removed, so a re-run makes it
        again.
    """
    source = open_video(video)
    metadata = results_metadata(predictor, source, out_path)
    writer = ResultsWriter(out_path, source.n_frames, predictor.config.n_keypoints, metadata)
    try:
        for chunk in chunks:
            arrays = read_chunk(chunk, predictor.sha256)
            if arrays is None:
                chunk.path.unlink(missing_ok=True)
                raise ResultsError(
                    f"{chunk.path}: this chunk of {video.name} was damaged after it was "
                    "written and has been removed; run the same command again to redo it."
                )
            writer.write(
                chunk.start,
                arrays["keypoints"],
                arrays["confidence"],
                arrays["covariance"],
                on_animal=arrays["on_animal"],
            )
        writer.add_metadata({"video_fingerprint": video_fingerprint(source)})
        path = writer.finish()
    finally:
        writer.close()
    shutil.rmtree(chunks[0].folder, ignore_errors=True)
    return path


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            "extracting many videos on a cluster needs dask.distributed: pip install "
            "'napari-bkind[cluster]' (or extract one video at a time)."
        ) from exc
    return distributed


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler``, else of a local cluster, closed after.

    The local cluster has ``workers`` single-threaded worker processes (default one per
    CPU core), each pinned to a core of its own when there are enough.
    """
    distributed = _distributed()
    if scheduler is not None:
        with _connect(distributed, scheduler) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRONMENT}),
        distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(n)
        _pin_to_cores(client)
        yield client


def _connect(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``, within :data:`CONNECT_TIMEOUT_S`.

    The address is checked first: its form, that something listens there and, over
    plain TCP, that it greets like a scheduler (which speaks first). So a wrong address
    costs no half-made client, which would complain again at exit, and a service that
    never answers no endless wait (dask's handshake has no timeout).

    Raises
    ------
    ConfigError
        The address is malformed, or no scheduler answered there in time.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    fix = (
        "give the address `dask scheduler` prints (e.g. tcp://HOST:8786), or leave out "
        "--scheduler for a local cluster."
    )
    try:
        scheme, location = parse_address(scheduler)
        if scheme not in ("tcp", "tls", "ws", "wss"):
            raise ValueError(f"{scheme}:// is not a TCP address")
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise ConfigError(f"--scheduler {scheduler!r} is not a scheduler address; {fix}") from exc
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as probe:
            if scheme == "tcp" and not probe.recv(1):
                raise ConnectionError("it closed the connection without a word")
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:  # refused, unreachable, silent (TimeoutError is an OSError)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--scheduler {scheduler!r}: no dask scheduler answered within "
            f"{CONNECT_TIMEOUT_S:g} s ({reason}); {fix}"
        ) from exc


def _pin_to_cores(client: Any) -> None:
    """Give each local worker (and the ffmpeg decoders it starts) a core of its own.

    On 2 cores this raised 2 workers' extraction from 236 to 255 frames/s
    (``bench/scale.py``): unpinned, the workers and their decoders keep displacing each
    other. Skipped where the system cannot pin or there are more workers than cores.
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    addresses = sorted(client.scheduler_info()["workers"])
    if len(addresses) > len(cores):
        return
    for core, address in zip(cores, addresses, strict=False):
        client.run(os.sched_setaffinity, 0, {core}, workers=[address])


def extract_many(
    checkpoint: str | Path,
    videos: Sequence[str | Path],
    out_paths: Sequence[str | Path],
    *,
    client: Any = None,
    workers: int | None = None,
    chunk_frames: int = TASK_FRAMES,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Extract keypoints of many videos, one dask task per chunk.

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint file or run folder.
    videos : sequence of str or Path
        The videos (their frame size must be the training size).
    out_paths : sequence of str or Path
        One results file per video.
    client : distributed.Client, optional
        A cluster's client; default: a ``LocalCluster`` of ``workers`` single-threaded
        workers, started only when there is work and closed at the end.
    workers : int, optional
        Workers of that local cluster (default one per CPU core, at most one per chunk).
    chunk_frames : int
        Frames per task.
    progress : callable, optional
        ``f(frames_done, frames_total)`` as chunks finish (finished videos count at once).

    Returns
    -------
    list of Path
        The results files, in the order of ``videos``.

    Raises
    ------
    ConfigError
        Before any work: a video given twice, two videos with one results file, or
        ``workers`` or ``chunk_frames`` below 1.
    """
    distributed = _distributed()
    _check_plan(videos, out_paths, workers, chunk_frames)
    predictor = Predictor(checkpoint, "cpu")
    jobs = []
    for video, out in zip(videos, out_paths, strict=True):
        source = open_video(video)
        check_frame_size(predictor, source)
        ensure_folder(Path(out).parent)
        plan = plan_chunks(Path(source.path), source.n_frames, Path(out), chunk_frames)
        jobs.append((Path(source.path), Path(out), plan))
    sha256 = predictor.sha256
    finished = {out for _, out, _ in jobs if is_finished(out, sha256)}
    total = sum(chunk.stop - chunk.start for _, _, plan in jobs for chunk in plan)
    done = sum(plan[-1].stop for _, out, plan in jobs if out in finished)
    if progress is not None:
        progress(done, total)
    pending = [(v, o, p) for v, o, p in jobs if o not in finished]
    if not pending:  # a re-run of finished work starts no cluster
        return [out for _, out, _ in jobs]
    for _, _, plan in pending:
        keep_chunks_of(plan[0].folder, sha256)
    with contextlib.ExitStack() as stack:
        if client is None:
            n_chunks = sum(len(plan) for _, _, plan in pending)
            n = min(workers or os.cpu_count() or 1, n_chunks)
            client = stack.enter_context(cluster_client(workers=n))
        left = {out: len(plan) for _, out, plan in pending}
        futures = {
            client.submit(
                extract_chunk,
                Path(predictor.path),
                chunk,
                sha256,
                key=f"bkind-chunk-{chunk.path}",
                retries=RETRIES,
                pure=False,
            ): (video, out, plan, chunk)
            for video, out, plan in pending
            for chunk in plan
        }
        for future in distributed.as_completed(futures):
            future.result()  # a chunk that failed every retry raises here
            video, out, plan, chunk = futures[future]
            done += chunk.stop - chunk.start
            left[out] -= 1
            if left[out] == 0:
                merge_chunks(predictor, video, out, plan)
            if progress is not None:
                progress(done, total)
    return [out for _, out, _ in jobs]


def _check_plan(
    videos: Sequence[str | Path],
    out_paths: Sequence[str | Path],
    workers: int | None,
    chunk_frames: int,
) -> None:
    """Refuse what would fail midway: repeated videos or results files, no workers."""
    for name, value in (("chunk frames", chunk_frames), ("workers", workers)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, not {value}.")
    first: dict[Path, int] = {}
    for i, video in enumerate(videos):
        earlier = first.setdefault(Path(video).resolve(), i)
        if earlier != i:
            raise ConfigError(f"{video}: this video is given twice; give each video once.")
    writers: dict[Path, int] = {}
    for i, (video, out) in enumerate(zip(videos, out_paths, strict=True)):
        earlier = writers.setdefault(Path(out).resolve(), i)
        if earlier != i:
            raise ConfigError(
                f"{out}: {videos[earlier]} and {video} would both write this results file "
                "(one file name); rename one video, or extract them into different folders."
            )
