"""Data parallelism under torchrun: one process per device, gradients averaged after each backward.

`torchrun --nproc_per_node=N gankd train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the group uses
gloo on CPU and nccl on GPU. As in NVlabs' StyleGAN2-ADA, gradients are all-reduced explicitly
rather than through DistributedDataParallel, because every phase runs several forward passes of
different networks. Replicas start identical (broadcast from rank 0) and stay so.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

from gankd.devices import pick_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def rank_from_env() -> int:
        return int(os.environ.get("RANK", 0))

    @staticmethod
    def world_from_env() -> int:
        return int(os.environ.get("WORLD_SIZE", 1))

    @classmethod
    def start(cls, device: str = "auto") -> "Dist":
        """Join the torchrun process group if there is one, and pick this process's device."""
        rank, world = cls.rank_from_env(), cls.world_from_env()
        local = int(os.environ.get("LOCAL_RANK", 0))
        dev = pick_device(device, local)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if torch_dist.is_torchelastic_launched():
            exit_with_launcher()
        if world > 1 and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
        return cls(rank, world, dev)

    def stop(self) -> None:
        if self.world > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()

    def broadcast(self, modules: list[nn.Module]) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.world == 1:
            return
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                torch_dist.broadcast(tensor.data, src=0)

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """Average the gradients of `params` over ranks, in one flat all-reduce."""
        if self.world == 1:
            return
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.flatten() for p in params]) / self.world
        torch_dist.all_reduce(flat)
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p))

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over ranks (differentiable only on the local part)."""
        if self.world == 1:
            return value
        total = value.detach().clone()
        torch_dist.all_reduce(total)
        return total / self.world

    def sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj) -> list:
        """Every rank's `obj` (JSON-like or tensors), in rank order."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def any(self, flag: bool) -> bool:
        return bool(self.sum([float(flag)])[0]) if self.world > 1 else flag

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()


_launcher: int | None = None  # the pid of torchrun, once watched


def exit_with_launcher(poll_seconds: float = 1.0, grace_seconds: float = 30.0) -> None:
    """Stop this worker when its launcher (torchrun) dies. torchrun stops its workers when it is
    stopped itself, but a launcher killed with SIGKILL cannot: its workers would train on,
    unsupervised. A daemon thread watches the parent process; when it is gone (the worker is
    re-parented) the worker gets SIGINT, so it stops as after Ctrl-C (one line: how to resume),
    and SIGKILL if it is still alive `grace_seconds` later (stuck in a collective)."""
    global _launcher
    _launcher = os.getppid()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started from a background shell: the watch needs it
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while not launcher_gone():
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace_seconds)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="gankd-launcher-watch", daemon=True).start()


def launcher_gone() -> bool:
    """Whether the torchrun launcher this worker started under has died (then a failed collective
    means a peer stopped, not a bug)."""
    return _launcher is not None and os.getppid() != _launcher
