"""Benchmark frame-exact video access; prints one JSON line.

Measures, on the shared open-field video (or ``--video``):

* random single-frame access: ``--random`` frames at random positions, each read from a
  fresh :class:`~bkind_model.io.video.VideoSource` (no decoder or chunk left over from
  the previous read; the frame index is cached, as it is after the first open);
* sequential decoding: one :meth:`~bkind_model.io.video.VideoSource.iter_chunks` pass.

and, on a synthetic one-hour 640x480 video (a 10 s lab-like clip: static arena, a dark
moving blob and sensor noise, looped with ``-c copy``), in a fresh process with an empty
index cache: resident memory added by :func:`~bkind_model.io.video.open_video` plus the
first frame, and the seconds until that frame is returned (measured after the imports and
one open of the short clip, so that they count the hour-long video only).

Usage: ``python bench/video_access.py [--video PATH] [--random N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bkind_model.io.ffmpeg import ffmpeg_exe
from bkind_model.io.video import open_video
from bkind_model.io.video_writer import write_video

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared/data/dlc_openfield/videos/m3v1mp4.mp4"
HOUR_FRAMES = 108_000
CLIP_FRAMES = 300
FPS = 30


def resident_mb() -> float:
    """Resident memory (VmRSS) of the current process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def random_access_ms(video: Path, n: int, seed: int = 0) -> np.ndarray:
    """Milliseconds to read each of ``n`` random frames, a fresh source per read."""
    with open_video(video) as source:  # builds the index cache once
        n_frames = source.n_frames
    times = []
    for frame in np.random.default_rng(seed).integers(0, n_frames, n):
        with open_video(video) as source:
            began = time.perf_counter()
            source[int(frame)]
            times.append(time.perf_counter() - began)
    return np.array(times) * 1e3


def sequential_fps(video: Path) -> float:
    """Frames per second of one sequential pass over the whole video."""
    with open_video(video) as source:
        began = time.perf_counter()
        count = sum(len(frames) for _, frames in source.iter_chunks(chunk=64))
        return count / (time.perf_counter() - began)


def lab_clip(n: int = CLIP_FRAMES, noise: float = 2.0, seed: int = 0):
    """Yield ``n`` 640x480 frames: textured arena, a dark blob moving round, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    arena = (150 + 40 * np.sin(x / 23.0) * np.cos(y / 31.0)).astype(np.float32)
    arena[(x - 320) ** 2 + (y - 240) ** 2 > 220**2] = 40
    for k in range(n):
        angle = 2 * np.pi * k / n
        cx, cy = 320 + 150 * np.cos(angle), 240 + 100 * np.sin(2 * angle)
        frame = arena.copy()
        frame[((x - cx) / 30) ** 2 + ((y - cy) / 15) ** 2 < 1] = 20
        frame += rng.normal(0, noise, frame.shape).astype(np.float32)
        yield np.repeat(np.clip(frame, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def make_hour_video(folder: Path) -> Path:
    """A one-hour 640x480 30 fps H.264 mp4: a 10 s clip looped 360 times (stream copy)."""
    clip = write_video(folder / "clip.mp4", lab_clip(), FPS)
    hour = folder / "hour.mp4"
    loops = HOUR_FRAMES // CLIP_FRAMES - 1
    subprocess.run(
        [
            *(ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops)),
            *("-i", str(clip), "-c", "copy", str(hour)),
        ],
        check=True,
    )
    return hour


def measure_open(video: Path) -> dict:
    """Open ``video`` with whatever index cache is configured; time and memory to frame 0."""
    before = resident_mb()
    began = time.perf_counter()
    source = open_video(video)
    opened = time.perf_counter()
    source[0]
    first = time.perf_counter()
    result = {
        "n_frames": source.n_frames,
        "open_s": opened - began,
        "first_frame_s": first - began,
        "added_rss_mb": resident_mb() - before,
    }
    source.close()
    return result


def hour_video_open(folder: Path) -> dict:
    """:func:`measure_open` on the one-hour video in a fresh process, index cache empty."""
    hour = make_hour_video(folder)
    env = os.environ | {"BKIND_CACHE_DIR": str(folder / "empty-cache")}
    child = subprocess.run(
        [sys.executable, __file__, "--measure-open", str(hour)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(child.stdout)
    if result["n_frames"] != HOUR_FRAMES:
        raise RuntimeError(f"one-hour video has {result['n_frames']} frames, not {HOUR_FRAMES}")
    result["file_mb"] = hour.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--random", type=int, default=200, help="random reads to time")
    parser.add_argument("--measure-open", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_open:
        open_video(args.measure_open.parent / "clip.mp4").close()  # load code and ffmpeg
        print(json.dumps(measure_open(args.measure_open)))
        return

    load = os.getloadavg()[0]
    times = random_access_ms(args.video, args.random)
    fps = sequential_fps(args.video)
    with tempfile.TemporaryDirectory(prefix="bkind-bench-") as tmp:
        hour = hour_video_open(Path(tmp))
    result = {
        "video": args.video.name,
        "random_reads": args.random,
        "random_median_ms": round(float(np.median(times)), 1),
        "random_p95_ms": round(float(np.percentile(times, 95)), 1),
        "sequential_fps": round(fps, 1),
        "hour_n_frames": hour["n_frames"],
        "hour_file_mb": round(hour["file_mb"], 1),
        "hour_open_s": round(hour["open_s"], 3),
        "hour_first_frame_s": round(hour["first_frame_s"], 3),
        "hour_added_rss_mb": round(hour["added_rss_mb"], 1),
        "cpus": os.cpu_count(),
        "loadavg_1min_before": round(load, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
