"""Training on several processes: PyTorch DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node N -m bkind_model train VIDEO --out RUN --distributed`` starts
N copies of ``bkind train``; each joins the process group torchrun describes in its
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` ...), on NCCL when
it trains on a CUDA GPU and on gloo on the CPU. Several machines are torchrun's own
business (``--nnodes``, ``--rdzv-endpoint``); nothing here changes for them.

What the ranks share and what they keep to themselves:

* **the batch**: ``Config.batch_size`` stays the *global* batch; each rank draws
  ``batch_size / N`` pairs from its own random stream, seeded by (seed, rank, step)
  (:class:`~bkind_model.frames.pairs.StepPairs`), so the ranks see different pairs and a
  resumed run draws the same ones again;
* **the gradients**: DDP averages them over the ranks, so a step equals one step on the
  global batch (BatchNorm's statistics are each rank's own, the usual DDP practice);
* **the decisions**: logged losses are means over the ranks, and every rank agrees (one
  small all-reduce per step) on stopping after a cancel or a signal, on a diverged loss,
  and on the step count a time budget fits, so no rank waits forever for another;
* **the files**: rank 0 alone holds the run folder's lock and writes checkpoints and the
  progress bar; the checkpoint it resumes from is read by rank 0 and sent to the others,
  and frame caches are built by each machine's first rank before the others read them.

Joining waits at most :data:`RENDEZVOUS_TIMEOUT_S` seconds (``BKIND_RENDEZVOUS_TIMEOUT_S``)
for the rendezvous at ``MASTER_ADDR:MASTER_PORT``, and a signal stops the wait at once.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bkind_model.errors import ConfigError
from bkind_model.model.network import BKinD
from bkind_model.train.objective import Objective

#: torchrun's environment variables a rank needs.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: How long a rank waits for the others before giving up (a rank that died is noticed by
#: torchrun, which stops the rest, long before this).
TIMEOUT = datetime.timedelta(minutes=10)
#: Seconds a rank waits at the rendezvous for the store at ``MASTER_ADDR:MASTER_PORT`` and
#: for the other ranks to reach it; the environment variable overrides it.
RENDEZVOUS_TIMEOUT_S = 60.0
RENDEZVOUS_VARIABLE = "BKIND_RENDEZVOUS_TIMEOUT_S"
#: Stop codes agreed between ranks: nothing, a cancel, or 100 + a signal's number.
_NO_STOP, _CANCELLED, _SIGNAL = 0, 1, 100


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a distributed run.

    Attributes
    ----------
    rank : int
        This process's number, 0 to ``world_size - 1``; rank 0 writes the files.
    world_size : int
        Processes training together.
    local_rank : int
        This process's number on its own machine (its GPU, on CUDA).
    device : torch.device
        Where this rank trains.
    owns_group : bool
        Whether :func:`join` started the process group (and :meth:`leave` ends it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def leader(self) -> bool:
        """True on rank 0, the one that writes checkpoints and shows progress."""
        return self.rank == 0

    @property
    def builds_caches(self) -> bool:
        """True on each machine's first rank, which fills the frame caches first."""
        return self.local_rank == 0

    def local_batch(self, batch_size: int) -> int:
        """Pairs this rank draws per step from the global ``batch_size``.

        Raises
        ------
        ConfigError
            When the global batch does not split evenly over the ranks.
        """
        if batch_size % self.world_size:
            fits = [n for n in range(1, batch_size + 1) if batch_size % n == 0]
            larger = (batch_size // self.world_size + 1) * self.world_size
            raise ConfigError(
                f"batch {batch_size} does not split evenly over {self.world_size} processes; "
                f"use --batch {larger} (or another multiple of {self.world_size}), or run "
                f"with --nproc_per_node in {fits}."
            )
        return batch_size // self.world_size

    # -- agreement between ranks (every rank must call these at the same step) ------------

    def mean(self, values: Tensor) -> Tensor:
        """The mean of a small float tensor over the ranks."""
        reduced = values.detach().to(self._wire, torch.float64).clone()
        torch.distributed.all_reduce(reduced)
        return (reduced / self.world_size).cpu().to(values.dtype)

    def slowest(self, steps_per_s: float) -> float:
        """The lowest of the ranks' speeds, steps/s (a budget must fit the slowest)."""
        speed = torch.tensor([steps_per_s], dtype=torch.float64, device=self._wire)
        torch.distributed.all_reduce(speed, op=torch.distributed.ReduceOp.MIN)
        return float(speed.item())

    def stop_reason(self, cancelled: bool, signal_number: int | None) -> int:
        """Agree on stopping: 0 to go on, else the strongest reason of any rank.

        Parameters
        ----------
        cancelled : bool
            Whether this rank was asked to stop.
        signal_number : int or None
            The signal that asked, if one did.

        Returns
        -------
        int
            0 (no rank stops), 1 (a cancel) or 100 + a signal's number.
        """
        code = _NO_STOP
        if signal_number is not None:
            code = _SIGNAL + signal_number
        elif cancelled:
            code = _CANCELLED
        agreed = torch.tensor([code], dtype=torch.int64, device=self._wire)
        torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MAX)
        return int(agreed.item())

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        box = [value if self.leader else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self._wire)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.device.type == "cuda":
            torch.distributed.barrier(device_ids=[self.device.index or 0])
        else:
            torch.distributed.barrier()

    def leave(self) -> None:
        """End the process group if :func:`join` started it."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    @property
    def _wire(self) -> torch.device:
        """Where the collectives' tensors live: the GPU for NCCL, the CPU for gloo."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def signal_code(code: int) -> int | None:
    """The signal number in a :meth:`Ranks.stop_reason` code, or None."""
    return code - _SIGNAL if code >= _SIGNAL else None


def torchrun_environment() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment torchrun sets.

    Raises
    ------
    ConfigError
        When this process was not started by torchrun: says how to start it.
    """
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(
            f"--distributed needs torchrun's environment ({', '.join(missing)} not set): "
            "start training with `torchrun --nproc_per_node N -m bkind_model train VIDEO "
            "--out RUN --distributed` (N processes: GPUs, or CPU processes with gloo), or "
            "leave out --distributed to train in this process."
        )
    try:
        return (
            int(os.environ["RANK"]),
            int(os.environ["WORLD_SIZE"]),
            int(os.environ["LOCAL_RANK"]),
        )
    except ValueError as exc:
        raise ConfigError(f"torchrun's RANK/WORLD_SIZE/LOCAL_RANK are not numbers: {exc}") from exc


def join(device: torch.device) -> Ranks:
    """Join torchrun's process group (start it if this process has not).

    Parameters
    ----------
    device : torch.device
        The device the run asked for; on CUDA each rank takes the GPU of its local rank.

    Returns
    -------
    Ranks
        This process's place, with the device it trains on.
    """
    rank, world_size, local_rank = torchrun_environment()
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"rank {rank} is local process {local_rank} but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s): start at most that many "
                "processes per machine (torchrun --nproc_per_node)."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(
            f"--distributed trains on CUDA GPUs (NCCL) or on the CPU (gloo), not on {device}; "
            "use --device cuda or --device cpu."
        )
    owns = not torch.distributed.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        store = _rendezvous(rank, world_size)
        store.set_timeout(TIMEOUT)  # the collectives' patience, not the rendezvous'
        torch.distributed.init_process_group(
            backend, store=store, rank=rank, world_size=world_size, timeout=TIMEOUT
        )
    return Ranks(rank, world_size, local_rank, device, owns)


def rendezvous_timeout() -> float:
    """Seconds to wait at the rendezvous: ``BKIND_RENDEZVOUS_TIMEOUT_S`` or the default.

    Raises
    ------
    ConfigError
        When the variable is not a positive number of seconds.
    """
    text = os.environ.get(RENDEZVOUS_VARIABLE)
    if text is None:
        return RENDEZVOUS_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"{RENDEZVOUS_VARIABLE}={text!r} is not a number of seconds above 0; set it to "
            f"e.g. {RENDEZVOUS_TIMEOUT_S:g} or unset it."
        )
    return seconds


def _rendezvous(rank: int, world_size: int) -> torch.distributed.Store:
    """The store every rank meets at, within :func:`rendezvous_timeout` seconds.

    Ranks that connect to the store (all of them under torchrun, whose agent holds it;
    ranks above 0 otherwise) first wait for it to listen here in Python, so a wrong or
    dead address fails with one line (torch's own client logs every failed try with a
    C++ stack). The rendezvous itself runs in a helper thread: a wait inside torch would
    hold back the signal handlers of the main thread, which keeps them.

    Raises
    ------
    ConfigError
        Nothing listened at ``MASTER_ADDR:MASTER_PORT``, or the other ranks did not come.
    """
    host, text = os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]
    address = f"MASTER_ADDR:MASTER_PORT {host}:{text}"
    if not text.isdigit() or not 0 < int(text) < 2**16:
        raise ConfigError(f"{address}: the port is not a number from 1 to 65535.")
    timeout = rendezvous_timeout()
    deadline = time.monotonic() + timeout
    hosts_store = rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    others = "the other ranks" if hosts_store else "rank 0"
    fix = (
        f"start {others} with the same MASTER_ADDR and MASTER_PORT (torchrun starts every "
        f"rank), or wait longer with {RENDEZVOUS_VARIABLE}=SECONDS."
    )
    if not hosts_store:
        message = f"{address}: nothing answered within {timeout:g} s; {fix}"
        _wait_for_listener(host, int(text), deadline, message)
    box: dict[str, Any] = {}

    def meet() -> None:
        try:
            left = datetime.timedelta(seconds=max(deadline - time.monotonic(), 1.0))
            box["store"] = next(torch.distributed.rendezvous("env://", timeout=left))[0]
        except Exception as exc:  # handed to the main thread
            box["error"] = exc

    helper = threading.Thread(target=meet, name="bkind-rendezvous", daemon=True)
    helper.start()
    helper.join()  # interruptible: a SIGTERM handler runs here
    if "error" in box:
        raise ConfigError(
            f"{address}: the {world_size} ranks did not meet within {timeout:g} s "
            f"({str(box['error']).splitlines()[0]}); {fix}"
        ) from box["error"]
    store: torch.distributed.Store = box["store"]
    return store


def _wait_for_listener(host: str, port: int, deadline: float, message: str) -> None:
    """Return once ``host:port`` accepts a TCP connection; ConfigError at ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(min(left, 1.0), 0.1)):
                return
        except OSError:
            if left <= 0:
                raise ConfigError(message) from None
            time.sleep(min(0.25, max(left, 0.0)))


class _StepLoss(nn.Module):
    """The model and its objective as one module, so DDP sees every use of the weights.

    The equivariance term runs the encoder a second time outside ``BKinD.forward``;
    wrapping the whole objective keeps DDP's gradient hooks and buffer broadcasts right.
    """

    def __init__(self, model: BKinD, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(
        self,
        first: Tensor,
        second: Tensor,
        animals: tuple[Tensor, Tensor] | None,
        step: int,
        quarter_turns: int,
        features: list[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """The loss terms of :meth:`Objective.terms`."""
        return self.objective.terms(
            self.model, first, second, animals, step, quarter_turns, features
        )


def distributed_loss(model: BKinD, objective: Objective, ranks: Ranks) -> nn.Module:
    """``model`` and ``objective`` wrapped in DDP: called like :meth:`Objective.terms`.

    Building it copies rank 0's weights to every rank.
    """
    ids = [ranks.device.index or 0] if ranks.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(_StepLoss(model, objective), device_ids=ids)
