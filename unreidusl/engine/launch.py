"""Start ``main_func`` in every process of a ``torch.distributed`` job (detectron2's ``launch``).

* Under ``torchrun`` (``$RANK``, ``$WORLD_SIZE``, ``$LOCAL_RANK`` set): the process group is
  initialised from the environment and ``main_func`` runs in this process.
* Otherwise, with ``num_processes × num_machines > 1``: ``num_processes`` workers are spawned on
  this machine; worker ``l`` of machine ``m`` has rank ``m·num_processes + l`` and joins the group
  at ``dist_url`` ("auto": a free local port, single machine only).
* Otherwise ``main_func`` runs in this process without a process group.

Backend: NCCL with CUDA (one GPU per process, ``cuda:local_rank``), gloo on CPU.
"""
import datetime
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm

__all__ = ["launch", "free_port_url", "create_ddp_model"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


def free_port_url() -> str:
    """``tcp://127.0.0.1:<port>`` with a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def _bind_device(local_rank: int) -> None:
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {local_rank} but only {torch.cuda.device_count()} GPUs are "
                               f"visible: lower --num-gpus (or torchrun's --nproc-per-node)")
        torch.cuda.set_device(local_rank)


def launch(main_func, num_processes: int, num_machines: int = 1, machine_rank: int = 0,
           dist_url: str = "auto", args=(), timeout: datetime.timedelta = DEFAULT_TIMEOUT) -> int:
    """Run ``main_func(*args)`` in every process of the job; returns the exit code (0 on success,
    else the first failing worker's ``main_func`` return value or exit code)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        _bind_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(_backend(), init_method="env://", timeout=timeout)
        return _run(main_func, args)
    world = num_processes * num_machines
    if world <= 1:
        return int(main_func(*args) or 0)
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("--dist-url auto works on one machine only; give tcp://HOST:PORT of machine 0")
        dist_url = free_port_url()
    try:
        mp.start_processes(_worker, nprocs=num_processes, start_method="spawn",
                           args=(main_func, world, num_processes, machine_rank, dist_url, args, timeout))
    except mp.ProcessExitedException as e:
        return int(e.exit_code) or 1
    return 0


def _worker(local_rank, main_func, world, num_processes, machine_rank, dist_url, args, timeout) -> None:
    _bind_device(local_rank)
    rank = machine_rank * num_processes + local_rank
    dist.init_process_group(_backend(), init_method=dist_url, world_size=world, rank=rank, timeout=timeout)
    code = _run(main_func, args)
    if code:
        raise SystemExit(code)


def _run(main_func, args) -> int:
    try:
        comm.synchronize()
        return int(main_func(*args) or 0)
    finally:
        dist.destroy_process_group()


def create_ddp_model(model: torch.nn.Module) -> torch.nn.parallel.DistributedDataParallel:
    """``model`` wrapped for data-parallel training: gradients averaged over the ranks during the
    backward; buffers (BatchNorm statistics, teacher) broadcast from rank 0 at every forward, so all
    ranks extract features with the same model."""
    device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
