"""DDP under torchrun: gloo on CPU, nccl on GPU; BatchNorm statistics synchronised across ranks (as the papers)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "cpu") -> Dist:
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # a run's batch shapes stay fixed: cuDNN picks its fastest kernels once
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, torch.device(device))
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    dev = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return Dist(dist.get_rank(), world, dev)


def wrap(module: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """Move to the device; under several ranks wrap in DDP, with BatchNorm converted to SyncBatchNorm on GPUs."""
    module = module.to(d.device)
    if d.world == 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    if d.device.type == "cuda":  # torch's SyncBatchNorm runs on GPUs only; gloo ranks keep per-rank statistics
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return DistributedDataParallel(module, device_ids=[d.device.index] if d.device.type == "cuda" else None)
