"""Many videos on 1 and 2 dask workers, and DDP training on 1 and 2 processes.

Writes ``--videos`` synthetic videos (``--frames`` frames each, 256x256), trains a tiny
B-KinD model for a few steps (the work per frame is the network's forward pass, whatever
its training), then extracts all videos with :func:`bkind_model.infer.cluster.extract_many`
on a ``LocalCluster`` of 1 and of 2 single-threaded worker processes (cluster start-up
excluded, chunks of ``--chunk-frames``), and once sequentially in this process
(:func:`~bkind_model.infer.extraction.extract`, one torch thread) as the reference. Prints
one JSON line: frames/s per setting, the speed-up of 2 workers over 1 (goal >= 1.6x on 2
cores), and ``identical``: every video's keypoints from the cluster equal the sequential
ones frame by frame (no frame lost, duplicated or shifted across chunks). The clusters
are the ones ``extract_many`` starts (:func:`~bkind_model.infer.cluster.cluster_client`:
each worker pinned to a core, its ffmpeg decoders single-threaded).

``ddp``: ``bkind train`` on the first video for ``--ddp-steps`` steps at the default batch
(16 pairs, 96 px), once in one process with 2 torch threads and once as 2 gloo ranks under
``torchrun`` (one thread each, 8 pairs each): seconds per step (the run's training time
over its steps, from the checkpoint), the speed-up, and the gap between the two mean
losses over the steps after 20 (the test's tolerance is 0.2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--chunk-frames", type=int, default=400)
    parser.add_argument("--ddp-steps", type=int, default=80, help="0: no DDP figures")
    args = parser.parse_args(argv)

    from bkind_model.config import Config
    from bkind_model.infer.cluster import cluster_client, extract_many
    from bkind_model.infer.extraction import extract_to_result
    from bkind_model.io.results import KeypointResult
    from bkind_model.synthetic import SyntheticConfig, write_sample
    from bkind_model.train.loop import Trainer

    work = Path(tempfile.mkdtemp(prefix="bkind-scale-"))
    try:
        videos = []
        for seed in range(args.videos):
            video = work / f"video{seed}.mp4"
            write_sample(
                video, SyntheticConfig(height=256, width=256, n_frames=args.frames, seed=seed)
            )
            videos.append(video)
        trainer = Trainer([videos[0]], work / "run", Config(steps=3, image_size=96, threads=2))
        for _ in trainer.run():
            pass
        trainer.close()
        checkpoint = trainer.checkpoint_path
        total = args.videos * args.frames

        torch.set_num_threads(1)
        start = time.perf_counter()
        reference = [
            extract_to_result(checkpoint, v, work / f"seq{i}.h5") for i, v in enumerate(videos)
        ]
        sequential = total / (time.perf_counter() - start)

        figures: dict = {"sequential_1_thread": round(sequential, 1)}
        identical = True
        for workers in (1, 2):
            name = f"workers_{workers}"
            outs = [work / f"{name}-{i}.bkind.h5" for i in range(len(videos))]
            with cluster_client(workers=workers) as client:
                start = time.perf_counter()
                extract_many(
                    checkpoint, videos, outs, client=client, chunk_frames=args.chunk_frames
                )
                figures[name] = round(total / (time.perf_counter() - start), 1)
            for out, ref in zip(outs, reference, strict=True):
                got = KeypointResult.load(out)
                identical &= bool(np.array_equal(got.keypoints, ref.keypoints))
        print(
            json.dumps(
                {
                    "benchmark": "scale",
                    "videos": args.videos,
                    "frames_per_video": args.frames,
                    "chunk_frames": args.chunk_frames,
                    "frames_per_s": figures,
                    "speedup_2_over_1": round(figures["workers_2"] / figures["workers_1"], 2),
                    "goal_speedup": 1.6,
                    "identical": identical,
                    "ddp": ddp_figures(videos[0], work, args.ddp_steps)
                    if args.ddp_steps
                    else None,
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def ddp_figures(video: Path, work: Path, steps: int) -> dict:
    """Step time and loss of one process (2 threads) against 2 gloo ranks (1 thread each)."""
    from bkind_model.io.checkpoint import load_checkpoint

    common = ["train", str(video), "--steps", str(steps), "--image-size", "96"]
    common += ["--checkpoint-every", "100000"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    runs = {
        "one": [sys.executable, "-m", "bkind_model", *common, "--threads", "2"],
        "two": [*torchrun, "--nproc_per_node=2", "-m", "bkind_model", *common, "--distributed"],
    }
    seconds, losses = {}, {}
    for name, command in runs.items():
        out = work / f"ddp-{name}"
        subprocess.run([*command, "--out", str(out)], check=True, capture_output=True)
        saved = load_checkpoint(out)
        seconds[name] = saved["history"]["seconds"] / steps
        losses[name] = np.mean([s["total"] for s in saved["history"]["losses"][20:]])
    return {
        "steps": steps,
        "batch": 16,
        "step_s_1_process_2_threads": round(seconds["one"], 4),
        "step_s_2_ranks_1_thread": round(seconds["two"], 4),
        "speedup_2_ranks": round(seconds["one"] / seconds["two"], 2),
        "loss_gap_after_step_20": round(abs(losses["two"] / losses["one"] - 1), 3),
        "loss_tolerance": 0.2,
    }


if __name__ == "__main__":
    sys.exit(main())
