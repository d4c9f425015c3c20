"""Overlay video writing speed on the shared open-field video (640x480, 2330 frames).

Ten keypoints along a mouse-sized body walk loops in the arena, joined by a nine-edge
chain skeleton, with 10-frame trails and their names: the work of a labelled video with
DeepLabCut-like settings. Reports frames/s of ``write_overlay_video`` (decode, draw and
H.264 encode together) and, for comparison, of decoding alone. Prints one JSON line on
stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bkind_model.io.overlay import write_overlay_video
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video

VIDEO = Path(__file__).resolve().parents[2] / "shared/data/dlc_openfield/videos/m3v1mp4.mp4"
N_KEYPOINTS = 10


def moving_keypoints(n_frames: int, width: int, height: int) -> KeypointResult:
    """A 63 px body of ``N_KEYPOINTS`` keypoints, 7 px apart, walking loops in the arena.

    The body's front moves on a Lissajous loop (about 1.5 px per frame at 30 fps) and the
    keypoints follow along its heading, swaying a little sideways.
    """
    t = np.arange(n_frames)[:, None] / 30.0
    front = np.stack([width / 2 + 150 * np.cos(0.3 * t), height / 2 + 100 * np.sin(0.45 * t)], -1)
    velocity = np.stack([-45 * np.sin(0.3 * t), 45 * np.cos(0.45 * t)], -1)
    heading = velocity / np.linalg.norm(velocity, axis=-1, keepdims=True)
    side = heading[..., ::-1] * np.array([-1, 1])
    k = np.arange(N_KEYPOINTS)[None, :, None]
    sway = 3 * np.sin(2 * t[..., None] + k)
    keypoints = (front - 7 * k * heading + sway * side).astype(np.float32)
    shape = keypoints.shape[:2]
    metadata = {"skeleton": [[f"kp{i}", f"kp{i + 1}"] for i in range(N_KEYPOINTS - 1)]}
    return KeypointResult(keypoints, np.ones(shape), np.zeros((*shape, 2, 2)), metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, help="write only the first N frames")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    source = open_video(args.video)
    stop = args.frames or source.n_frames
    result = moving_keypoints(source.n_frames, source.width, source.height)
    begin = time.perf_counter()
    for _ in source.iter_chunks(64, 0, stop):
        pass
    decode_s = time.perf_counter() - begin
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "overlay.mp4"
        begin = time.perf_counter()
        write_overlay_video(
            result,
            out,
            video=source,
            trail=10,
            stop=stop,
            scale=args.scale,
            progress=lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr),
        )
        seconds = time.perf_counter() - begin
        print(file=sys.stderr)
        size_mb = out.stat().st_size / 2**20
        written = open_video(out).n_frames
    source.close()
    print(
        json.dumps(
            {
                "video": args.video.name,
                "size": f"{source.width}x{source.height}",
                "scale": args.scale,
                "frames": written,
                "keypoints": N_KEYPOINTS,
                "edges": N_KEYPOINTS - 1,
                "trail": 10,
                "names": True,
                "seconds": round(seconds, 2),
                "frames_per_s": round(stop / seconds, 1),
                "decode_only_frames_per_s": round(stop / decode_s, 1),
                "output_mb": round(size_mb, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
