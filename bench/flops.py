"""Work of one training pair and one extracted frame: FLOPs and bytes, measured on the CPU.

Counts, at the default configuration (``Config()``: the small encoder, 10 keypoints, batch 16)
with a 128 px input (what the defaults pick for the real recordings; ``--image-size``), with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, forward and backward) and a byte counter over every aten operator (bytes
read and written by each operator as if nothing were fused or cached: an upper bound on
memory traffic):

* ``train_pair``: forward and backward of the network on one (frame, frame) pair, per
  pair of a batch of ``--batch`` pairs (the optimiser step is negligible next to it);
* ``extract_frame``: the keypoint network's forward pass on one frame of a batch of 64.

From them, the roofline bounds on a GPU: ``min(peak FLOP/s / FLOPs, bandwidth / bytes)``
per second, for the GPUs in :data:`GPUS` (dense bf16 peak and memory bandwidth from their
data sheets). They are ceilings, not predictions: ``bench/gpu.py`` measures the real
figures on a GPU. ``docs/scaling.md`` explains them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from bkind_model.config import Config
from bkind_model.model.network import BKinD

#: Dense bf16 tensor-core peak (FLOP/s) and memory bandwidth (bytes/s), from data sheets.
GPUS = {
    "H100 SXM": (989e12, 3.35e12),
    "H200": (989e12, 4.8e12),
    "A100 80GB": (312e12, 2.0e12),
    "L4": (121e12, 0.3e12),
}


class ByteCounter(TorchDispatchMode):
    """Bytes of every tensor an aten operator reads or writes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten((args, kwargs, out))[0]:
            if isinstance(value, torch.Tensor):
                self.bytes += value.numel() * value.element_size()
        return out


def count(step, n: int) -> dict:
    """FLOPs and bytes per item of ``step()``, which processes ``n`` items."""
    with FlopCounterMode(display=False) as flops:
        step()
    with ByteCounter() as traffic:
        step()
    return {"gflops": flops.get_total_flops() / n / 1e9, "mbytes": traffic.bytes / n / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=Config().batch_size, help="pairs per step")
    parser.add_argument(
        "--image-size", type=int, default=128, help="input side, px (default 128: a real mouse)"
    )
    args = parser.parse_args(argv)
    config = Config(image_size=args.image_size)
    torch.manual_seed(0)
    model = BKinD(config)
    side = config.image_size
    pair = torch.rand(2, args.batch, 3, side, side)

    def train() -> None:
        out = model(pair[0], pair[1])
        # The loss terms are cheap next to the network: the reconstruction and keypoints.
        loss = out.reconstruction.float().mean() + out.keypoints_a.mean.float().mean()
        loss = loss + out.keypoints_b.mean.float().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    frames = torch.rand(64, 3, side, side)

    def extract() -> None:
        with torch.no_grad():
            model.keypoints(frames)

    figures = {"train_pair": count(train, args.batch), "extract_frame": count(extract, 64)}
    bounds = {}
    for gpu, (peak, bandwidth) in GPUS.items():
        bounds[gpu] = {
            what: round(min(peak / (f["gflops"] * 1e9), bandwidth / (f["mbytes"] * 2**20)), 0)
            for what, f in figures.items()
        }
    print(
        json.dumps(
            {
                "benchmark": "flops",
                "config": {"image_size": side, "encoder": config.encoder, "batch": args.batch},
                "parameters": sum(p.numel() for p in model.parameters()),
                **{k: {m: round(v, 3) for m, v in f.items()} for k, f in figures.items()},
                "roofline_per_s": bounds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
