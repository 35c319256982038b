"""torch.distributed on CPU: 2 gloo processes on the tiny synthetic world (a hang fails the test)."""
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from unreidusl.engine import DefaultTrainer, EvalHook, PseudoLabelHook, default_setup, setup_cfg
from unreidusl.data.samplers import InferenceSampler
from unreidusl.engine.interrupt import StopOnSignal, TrainingInterrupted
from unreidusl.engine.launch import free_port_url
from unreidusl.engine.nonfinite import NonFiniteLossGuard
from unreidusl.evaluation.extract import extract_features
from unreidusl.modeling.memory import ClusterMemory
from unreidusl.utils import comm
from unreidusl.utils.checkpoint import CheckpointError, load_checkpoint
from unreidusl.utils.events import EventStorage

from helpers import ROOT, tiny_opts

TIMEOUT_S = 240


def _spawn(fn, *args):
    """``fn(rank, *args)`` in two gloo processes; fails (and kills them) after TIMEOUT_S."""
    url = free_port_url()
    ctx = mp.start_processes(_init_and_run, args=(fn, url, args), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the 2-process job did not finish in {TIMEOUT_S}s (hang)")


def _init_and_run(rank, fn, url, args):
    dist.init_process_group("gloo", init_method=url, world_size=2, rank=rank)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


class _Items(torch.utils.data.Dataset):
    """Item i has the value ``values[i]``; with ``segments`` the items are frames of samples."""

    def __init__(self, values, segments=None):
        self.values, self.segments = values, segments
        if segments is not None:
            self.num_samples = max(segments) + 1

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        item = {"images": torch.tensor(float(self.values[i])), "index": i}
        return item if self.segments is None else {**item, "segments": self.segments[i]}


class _Scale(torch.nn.Module):
    """Feature of value v: v·(1, 10); frame features alike, averaged per sample and embedded as is."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 10.0]))

    def forward(self, batch):
        return self.frame_features(batch["images"])

    def frame_features(self, images):
        return images[:, None] * self.w

    def embed(self, pooled):
        return pooled


def _extract(dataset, rank):
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=InferenceSampler(len(dataset), rank, 2))
    return extract_features(_Scale(), loader)


def _collectives(rank, out):
    # 5 items: shards of 3 and 2, gathered in item order; frames of sample 1 split over both ranks
    torch.save(_extract(_Items([0, 1, 2, 3, 4]), rank), os.path.join(out, f"images{rank}.pt"))
    torch.save(_extract(_Items([0, 1, 2, 3, 4], [0, 0, 1, 1, 1]), rank), os.path.join(out, f"frames{rank}.pt"))
    rows = torch.full((rank + 1, 2), float(rank))  # unequal sizes: padded for the exchange
    torch.save(comm.all_gather_cat(rows), os.path.join(out, f"gather{rank}.pt"))
    memory = ClusterMemory(2, old_weight=0.5)
    memory.reset(torch.eye(2))
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]])[rank:rank + 1]  # rank 0 sees sample 0, rank 1 sample 1
    memory.update(x, torch.tensor([0]))
    torch.save(memory.features, os.path.join(out, f"memory{rank}.pt"))
    # a NaN loss on rank 0 only: both ranks skip the step
    model = torch.nn.Linear(1, 1)
    trainer = SimpleNamespace(epoch=0, inner_iter=0, iter=0, model=model,
                              optimizer=torch.optim.SGD(model.parameters(), lr=1.0))
    guard = NonFiniteLossGuard(max_skips=1)
    guard.before_forward(model)
    applied = guard.check(trainer, {"loss": torch.tensor(float("nan") if rank == 0 else 1.0)})
    torch.save(applied, os.path.join(out, f"applied{rank}.pt"))


def test_sharded_extraction_gather_memory_update_and_nan_skip_are_rank_consistent(tmp_path):
    _spawn(_collectives, str(tmp_path))
    for r in range(2):
        assert torch.equal(torch.load(tmp_path / f"gather{r}.pt"), torch.tensor([[0.0, 0], [1, 1], [1, 1]]))
        expected = torch.arange(5.0)[:, None] * torch.tensor([1, 10])
        assert torch.equal(torch.load(tmp_path / f"images{r}.pt"), expected)
        assert torch.allclose(torch.load(tmp_path / f"frames{r}.pt"), torch.tensor([[0.5, 5.0], [3.0, 30.0]]))
    # both ranks apply the global batch in rank order: c <- n(.5c + .5x0), then c <- n(.5c + .5x1)
    assert [torch.load(tmp_path / f"applied{r}.pt") for r in range(2)] == [False, False]
    c = torch.nn.functional.normalize(torch.tensor([0.5, 0.5]), dim=0)
    c = torch.nn.functional.normalize(0.5 * c + 0.5 * torch.tensor([1.0, 1.0]), dim=0)
    for r in range(2):
        mem = torch.load(tmp_path / f"memory{r}.pt")
        assert torch.allclose(mem[0], c) and torch.equal(mem[1], torch.tensor([0.0, 1.0]))


def _signal_and_write_failure(rank, out):
    # SIGTERM reached rank 1 only: both ranks stop before the same step with a checkpoint
    saved = []
    trainer = SimpleNamespace(epoch=0, inner_iter=3, max_epochs=2,
                              save_checkpoint=lambda name, mid_epoch: saved.append((name, mid_epoch)) or name)
    hook = StopOnSignal()
    hook.trainer = trainer
    hook.before_step()                                   # nobody has a signal yet: no stop
    if rank == 1:
        hook.received = signal.SIGTERM
    try:
        hook.before_step()
        outcome = "continued"
    except TrainingInterrupted as e:
        outcome = f"stopped {signal.Signals(e.signum).name} {saved}"
    # rank 0 cannot write a checkpoint: every rank raises instead of waiting for it
    failing = SimpleNamespace(checkpointer=SimpleNamespace(save_dir=out, save=_disk_full),
                              state_dict=lambda mid_epoch: {})
    try:
        DefaultTrainer.save_checkpoint(failing, "model_0001")
        written = "returned"
    except (OSError, CheckpointError) as e:
        written = f"{type(e).__name__}: {e}"
    torch.save({"outcome": outcome, "written": written}, os.path.join(out, f"stop{rank}.pt"))


def _disk_full(name, state):
    raise OSError(28, "No space left on device")


def test_a_signal_on_one_rank_and_a_failed_write_on_rank_0_stop_every_rank(tmp_path):
    _spawn(_signal_and_write_failure, str(tmp_path))
    results = [torch.load(tmp_path / f"stop{r}.pt") for r in range(2)]
    assert [r["outcome"] for r in results] == ["stopped SIGTERM [('model_interrupted', True)]"] * 2
    assert results[0]["written"].startswith("OSError") and "No space left" in results[0]["written"]
    assert results[1]["written"].startswith("CheckpointError: rank 0 could not write")
    assert "model_0001.pth" in results[1]["written"] and "No space left" in results[1]["written"]


def _train(rank, opts, out):
    cfg = setup_cfg("", opts)
    default_setup(cfg)
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    hook = next(h for h in trainer.hooks if isinstance(h, PseudoLabelHook))
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = next(h for h in trainer.hooks if isinstance(h, EvalHook)).history
    torch.save({"labels": torch.from_numpy(hook.labels), "model": state, "iter": trainer.iter,
                "wrapped": type(trainer.train_module).__name__, "history": history},
               os.path.join(out, f"rank{rank}.pt"))


@pytest.mark.slow
def test_two_process_training_matches_single_process_labels(tiny_root, tmp_path):
    # two epochs of one iteration: two clusterings, the DDP wrapper rebuilt for the second epoch
    opts = tiny_opts(tiny_root, tmp_path / "out", **{"SOLVER.ITERS_PER_EPOCH": 1, "TEST.EVAL_PERIOD": 1})
    _spawn(_train, opts, str(tmp_path))
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    out = tmp_path / "out"
    first_labels = load_checkpoint(str(out / "model_0001.pth"))["hooks"]["PseudoLabelHook"]["labels"].numpy()

    # single process, same seed and initial model: the first clustering gives the same labels
    cfg = setup_cfg("", tiny_opts(tiny_root, tmp_path / "single"))
    default_setup(cfg)
    single = DefaultTrainer(cfg)
    single.storage, single.epoch = EventStorage(), 0
    hook = next(h for h in single.hooks if isinstance(h, PseudoLabelHook))
    hook.refresh()
    assert (hook.labels >= 0).any()
    assert np.array_equal(first_labels, hook.labels)
    assert np.array_equal(results[0]["labels"], results[1]["labels"])  # the second clustering too
    assert all(res["iter"] == 2 and res["wrapped"] == "DistributedDataParallel" for res in results)
    # DDP, the gathered memory update and the end-of-epoch buffer sync keep both ranks' weights, BN
    # statistics and memory identical
    a, b = results[0]["model"], results[1]["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["memory.features"], single.model.memory.features)  # training moved it
    # evaluation ran on both ranks after each epoch (no hang) and both got rank 0's metrics
    assert results[0]["history"] == results[1]["history"] and len(results[0]["history"]) == 2
    # only rank 0 wrote: one log header, one set of checkpoints and metrics
    assert (out / "log.txt").read_text().count("Starting training") == 1
    assert "Starting training" not in (out / "log.rank1.txt").read_text()  # rank 1 keeps warnings only
    assert (out / "model_final.pth").is_file()
    evals = [line for line in (out / "metrics.json").read_text().splitlines() if "test/mAP" in line]
    assert len(evals) == 2


@pytest.mark.slow
def test_cli_num_gpus_spawns_workers_and_evaluates(tiny_root, tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "main.py"), "--num-gpus", "2", "--eval-only",
           *tiny_opts(tiny_root, tmp_path / "cli")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        text, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"tools/main.py --num-gpus 2 did not finish in {TIMEOUT_S}s (hang)")
    assert proc.returncode == 0, text
    assert "process 1 of 2" in text and "mAP" in text
    assert (tmp_path / "cli" / "log.txt").read_text().count("Evaluation:") == 1
