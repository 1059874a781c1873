"""Training: the VAE stage, then the DiT stage (paper Algorithm 1), on data rendered on the fly.

    camworld train --stage vae --preset cpu --out runs/vae
    camworld train --stage dit --preset cpu --vae runs/vae/model.safetensors --out runs/dit
    torchrun --nproc_per_node 2 -m camworld.train --stage dit ...   # data-parallel (DDP)
    camworld train --stage vae|dit --data DIR ...                     # on recorded posed videos (docs/DATA.md)

A run folder holds ``model.safetensors/.json`` (a complete, loadable WorldModel checkpoint, EMA
weights), ``train_state.safetensors`` + ``train_state.json`` (raw weights, optimizer, step: for
``--resume``), ``log.csv`` and ``samples/``. Every file is written atomically; the JSON state is
written last and names the step, so an interrupted save is never mistaken for a complete one.
The data stream is a pure function of (data seed, step, rank), so ``--resume`` continues exactly; with
``--data`` the run also records the videos it samples in ``data_index.json``.

From Python, a stage is a config dataclass and one call:

    >>> from camworld.model import preset
    >>> from camworld.train import DiTRunConfig, session, train_dit
    >>> run = DiTRunConfig(out="runs/dit", steps=100, vae="runs/vae/model.safetensors")
    >>> with session(run) as device:
    ...     model = train_dit(run, preset("tiny"), device)

Modules: ``runtime`` (run config, process setup and DDP, train state, log, data stream), ``vae``,
``dit``, ``recorded`` (samples from recorded videos), ``merge`` (the export stage), ``throughput`` (``camworld bench train``), ``cli`` (arguments
-> configs). ``export`` and ``bench`` here are the CLI entry points, hence the module names.
"""

from camworld.train.cli import (add_arguments, bench, bench_arguments, dit_run_config, export, export_config, main,
                                run, vae_run_config)
from camworld.train.dit import (GROWABLE, DiTLoss, DiTRunConfig, _dit_batch, encode_batch, load_dit_init,
                                revisit_eval, save_sample_grid, self_generated_context, train_dit)
from camworld.train.merge import ExportConfig, export_checkpoint
from camworld.train.recorded import DataConfig, RecordedSource, prepare, retrieve_context
from camworld.train.runtime import (BatchStream, CSVLog, RunConfig, apply_overrides, check_ranks_identical, dist_info,
                                    init_distributed, load_train_state, progress, save_train_state, session,
                                    warmup_lr)
from camworld.train.throughput import BenchConfig, measure_throughput
from camworld.train.vae import VAERunConfig, reconstruction_metrics, train_vae

__all__ = [
    "RunConfig", "VAERunConfig", "DiTRunConfig", "ExportConfig", "BenchConfig", "DataConfig",
    "RecordedSource", "prepare", "retrieve_context",
    "session", "dist_info", "init_distributed", "check_ranks_identical", "apply_overrides",
    "save_train_state", "load_train_state", "CSVLog", "progress", "warmup_lr", "BatchStream",
    "train_vae", "reconstruction_metrics",
    "train_dit", "DiTLoss", "self_generated_context", "GROWABLE", "load_dit_init", "encode_batch", "revisit_eval", "save_sample_grid",
    "export_checkpoint", "measure_throughput",
    "add_arguments", "run", "main", "export", "bench", "bench_arguments",
    "vae_run_config", "dit_run_config", "export_config",
]
