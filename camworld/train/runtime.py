"""What both training loops share: the run's config fields, the process setup (threads, device,
DDP), the training state on disk, the CSV log, the progress bar, and the prefetching data stream.

Training state: ``train_state.safetensors`` (raw weights and optimizer tensors, the step in its
metadata) + ``train_state.json`` (step, param groups, extras). Both are written atomically and the
JSON last, so an interrupted save is never mistaken for a complete one.
"""

from __future__ import annotations

import csv
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from camworld.files import atomic_write
from camworld.model import resolve_device


@dataclass
class RunConfig:
    """How to run a training stage (what to train is the ``WorldModelConfig``)."""

    out: Path                        # run folder: model.safetensors/.json, train_state.*, log.csv, samples/
    steps: int | None = None         # total optimisation steps (None: the stage's default, where it has one)
    seed: int = 0                    # data seed: the stream is a pure function of (seed, step, rank)
    resume: bool = False             # continue exactly from the run folder's last save
    init: str | None = None          # initialise the stage's network from this checkpoint (fine-tuning)
    device: str = "auto"
    threads: int = 0                 # torch CPU threads (0: torch's default)
    log_every: int = 200             # steps between held-out evaluations (rank 0)
    save_every: int = 200            # steps between checkpoints + training state (rank 0)
    workers: int = 0                 # processes that make batches ahead (0: inline; same batches either way)
    data: object = None              # recorded videos to train on (camworld.train.recorded.DataConfig); None: the sim

    def __post_init__(self):
        self.out = Path(self.out)


# ---------------------------------------------------------------- process setup and DDP


def dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_ranks_identical(module: nn.Module) -> bool:
    """DDP sanity check: every rank must hold bit-identical weights. Raises if not."""
    rank, world = dist_info()
    if world == 1:
        return True
    flat = torch.cat([p.detach().double().flatten() for p in module.parameters()]).cpu()
    stats = torch.stack([flat.sum(), (flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()])
    gathered = [torch.zeros_like(stats) for _ in range(world)]
    dist.all_gather(gathered, stats)
    if not all(torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP ranks diverged: weight checksums {[g.tolist() for g in gathered]}")
    if rank == 0:
        print(f"DDP check: all {world} ranks hold identical weights", flush=True)
    return True


def init_distributed(device: torch.device):
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist_info()


@contextmanager
def session(run: RunConfig):
    """Set up this process for a run -> its device: torch threads, TF32 on CUDA, the DDP process
    group when launched by torchrun (WORLD_SIZE > 1), the torch seed. A clean exit closes the group."""
    if run.threads:
        torch.set_num_threads(run.threads)
    device = resolve_device(run.device)
    if device.type == "cuda":  # TF32 matmuls: ~free speed on Ampere+, far inside the diffusion noise
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    init_distributed(device)
    torch.manual_seed(run.seed)
    yield device
    if dist.is_initialized():
        dist.destroy_process_group()


def data_record(run: RunConfig) -> str:
    """What a checkpoint's record says the stage trained on."""
    return "sim (rendered on the fly)" if run.data is None else f"recorded: {Path(run.data.root).resolve()}"


# ---------------------------------------------------------------- config overrides


def apply_overrides(cfg, items):
    """Set ``SECTION.KEY=VALUE`` fields of a ``WorldModelConfig`` in place (-> cfg). Values take the
    field's type: booleans from 1/true/yes, tuples from comma-separated lists."""
    for item in items:
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        target = getattr(cfg, section, None)
        if target is None or not hasattr(target, field):
            raise SystemExit(f"--set {item}: unknown field '{key}'")
        old = getattr(target, field)
        if isinstance(old, bool):
            new = value.lower() in ("1", "true", "yes")
        elif isinstance(old, tuple):
            new = tuple(type(old[0])(v) if old else float(v) for v in value.split(","))
        else:
            new = type(old)(value)
        setattr(target, field, new)
    return cfg


# ---------------------------------------------------------------- training state


def _state_tensors(prefix: str, model: nn.Module, opt) -> dict:
    tensors = {f"{prefix}model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for pid, st in opt.state_dict()["state"].items():
        for key, val in st.items():
            tensors[f"{prefix}optim.{pid}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous().clone()
    return tensors


def _load_state(tensors: dict, prefix: str, model: nn.Module, opt, param_groups):
    model.load_state_dict({k[len(prefix) + 6:]: v for k, v in tensors.items() if k.startswith(prefix + "model.")})
    state = {}
    for k, v in tensors.items():
        if k.startswith(prefix + "optim."):
            _, pid, key = k[len(prefix):].split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": param_groups})


def save_train_state(out: Path, model: nn.Module, opt, step: int, extra: dict, aux=None):
    """``aux``: an optional second (module, optimizer), e.g. a discriminator, saved in the same two files so
    that one interrupted save can never leave the two at different steps."""
    from safetensors.torch import save_file

    tensors = _state_tensors("", model, opt)
    doc = {"step": step, "param_groups": opt.state_dict()["param_groups"], **extra}
    if aux is not None:
        tensors.update(_state_tensors("aux.", *aux))
        doc["aux_param_groups"] = aux[1].state_dict()["param_groups"]
    meta = {"step": str(step)}
    atomic_write(out / "train_state.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))
    atomic_write(out / "train_state.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))


def load_train_state(out: Path, model: nn.Module, opt, aux=None):
    from safetensors import safe_open
    from safetensors.torch import load_file

    jpath, tpath = out / "train_state.json", out / "train_state.safetensors"
    if not (jpath.exists() and tpath.exists()):
        raise FileNotFoundError(f"--resume: no training state in {out} (expected {jpath.name} and {tpath.name})")
    doc = json.loads(jpath.read_text())
    with safe_open(str(tpath), "pt") as f:
        if int(f.metadata().get("step", -1)) != doc["step"]:
            raise ValueError(f"{tpath} and {jpath} disagree on the step: the last save was interrupted")
    tensors = load_file(str(tpath))
    if (aux is not None) != ("aux_param_groups" in doc):
        raise ValueError(f"--resume: {out} was saved {'without' if aux is not None else 'with'} a second network "
                         "(an adversarial stage's discriminator); resume it with the settings it was started with")
    _load_state(tensors, "", model, opt, doc["param_groups"])
    if aux is not None:
        _load_state(tensors, "aux.", *aux, doc["aux_param_groups"])
    return doc


# ---------------------------------------------------------------- logging


class CSVLog:
    def __init__(self, path: Path, fields):
        self.path, self.fields = path, fields
        if not path.exists():
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict):
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])


def warmup_lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / max(1, warmup))


def progress(total, initial, disable):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, disable=disable, dynamic_ncols=True, smoothing=0.05)


# ---------------------------------------------------------------- data stream


class BatchStream:
    """A training data stream in step order: ``make(step)`` for each step. With ``workers > 0`` batches
    are made ahead in a process pool (a bounded window of ``2 * workers`` steps); with 0 inline. Both
    give the very same batches when ``make`` is a pure function of the step. ``make`` must pickle for
    the pool: a module-level function, or a ``functools.partial`` of one."""

    def __init__(self, make, workers: int = 0):
        self.make = make
        self.workers = max(0, int(workers))
        self.pool = None
        if self.workers:
            import multiprocessing as mp

            # spawn: a forked child of a process that holds CUDA or OpenMP state can hang
            self.pool = mp.get_context("spawn").Pool(self.workers)

    def iterate(self, start: int, stop: int):
        if self.pool is None:
            for step in range(start, stop):
                yield self.make(step)
            return
        from collections import deque

        ahead, nxt = deque(), start
        while nxt < stop or ahead:
            while nxt < stop and len(ahead) < 2 * self.workers:
                ahead.append(self.pool.apply_async(self.make, (nxt,)))
                nxt += 1
            yield ahead.popleft().get()

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
