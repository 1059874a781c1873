"""The torch thread policy: processes that run worlds side by side must not starve each other.

torch starts every process with one intra-op thread per core. One process stepping a learned world
uses them well; two such processes on the same cores oversubscribe them (two processes on 2 cores
ran one ``World`` step 55x slower than one alone). And a process *forked* after its parent used
torch's CPU thread pool (GNU OpenMP) deadlocks on its first parallel op unless it runs one thread:
``AsyncVectorEnv``'s default start on Linux is fork, after it built a dummy env in the parent.

The policy, applied when a ``World`` (hence a learned-world env) is built:

- ``torch_threads=n`` (the ``World``/env keyword, ``--threads`` on the command line) or the
  environment variable ``CAMWORLD_TORCH_THREADS=n``: exactly n threads, whatever the process.
- A worker process, one of several that share the cores: a multiprocessing child (Gymnasium's
  ``AsyncVectorEnv``, SB3's ``SubprocVecEnv``, a ``multiprocessing.Pool``), or any process run with
  ``CAMWORLD_WORKERS=N``, takes its fair share, ``max(1, cores // workers)`` threads. The number of
  workers is ``CAMWORLD_WORKERS`` when set, else the multiprocessing siblings alive at that moment
  (Linux ``/proc``). A forked child, or one whose siblings cannot be counted, takes 1 thread.
- Any other process (the main one) keeps torch's setting: all the cores, or what you set.

A process that ends up with more threads than its share (an explicit setting above it) gets one
warning, at construction, saying how to fix it.

On CPU the fast path is not many processes at all: ``gym.make_vec(id, num_envs=N)`` steps all N
worlds of one process in ONE batched forward pass (one model copy, all cores on one big batch).
"""

from __future__ import annotations

import multiprocessing
import os
import warnings

__all__ = ["THREADS_ENV", "WORKERS_ENV", "add_argument", "apply", "cores", "fair_share", "is_worker", "share", "sibling_workers"]

THREADS_ENV = "CAMWORLD_TORCH_THREADS"   # exact torch threads for every camworld world of the process
WORKERS_ENV = "CAMWORLD_WORKERS"         # this process is one of N workers sharing the cores

_forked = False          # set in a child forked after this module was imported
_warned = False          # the over-share warning is given once per process


def _after_fork():
    global _forked, _warned
    _forked, _warned = True, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive_int(value, what: str) -> int:
    """An int >= 1 from an int or a decimal string (environment variables), else a clear error."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return int(value)


def fair_share(n_cores: int, workers: int | None) -> int:
    """Threads for one of ``workers`` processes on ``n_cores`` cores; None workers = unknown -> 1."""
    return 1 if not workers else max(1, int(n_cores) // int(workers))


def sibling_workers() -> int | None:
    """Multiprocessing siblings of this process alive now, itself included (None if not countable).

    Siblings are the children of our parent that run the same interpreter as workers: the same
    command line (fork, forkserver) or a spawn worker's ``--multiprocessing-fork`` (not the
    resource tracker or the forkserver itself). Linux only.
    """
    ppid = os.getppid()

    def cmdline(pid) -> bytes:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()

    try:
        mine = cmdline(os.getpid())
        try:
            with open(f"/proc/{ppid}/task/{ppid}/children") as f:
                children = f.read().split()
        except OSError:   # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
            children = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                            children.append(pid)
                except (OSError, IndexError, ValueError):
                    continue
    except OSError:
        return None
    n = 0
    for pid in children:
        try:
            cl = cmdline(pid)
        except OSError:   # exited meanwhile
            continue
        n += cl == mine or b"--multiprocessing-fork" in cl
    return n or None


def is_worker() -> bool:
    """Whether this process is one of several sharing the cores (see the module docstring)."""
    return bool(os.environ.get(WORKERS_ENV)) or multiprocessing.parent_process() is not None


def share() -> tuple:
    """-> (threads this process should use, why): the policy without any explicit setting."""
    n = cores()
    if not is_worker():
        return n, f"the main process: all {n} cores"
    if os.environ.get(WORKERS_ENV):
        w = _positive_int(os.environ[WORKERS_ENV], WORKERS_ENV)
        return fair_share(n, w), f"{n} cores // {WORKERS_ENV}={w} workers"
    if _forked:
        return 1, "a forked worker process (torch's OpenMP pool deadlocks after fork with more than 1 thread)"
    w = sibling_workers()
    if w is None:
        return 1, "a worker process whose sibling workers cannot be counted"
    return fair_share(n, w), f"{n} cores // {w} worker processes"


def apply(torch_threads: int | None = None) -> int:
    """Set torch's intra-op threads by the policy (``torch_threads``, if given, wins). -> threads in effect.

    Warns once per process when the threads in effect exceed this process's share, with the fix.
    """
    import torch

    global _warned
    explicit = torch_threads
    source = "torch_threads"
    if explicit is None and os.environ.get(THREADS_ENV):
        explicit, source = os.environ[THREADS_ENV], THREADS_ENV
    fair, why = share()
    if explicit is not None:
        n = _positive_int(explicit, source)
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    elif is_worker() and torch.get_num_threads() > fair:
        torch.set_num_threads(fair)
    have = torch.get_num_threads()
    if have > fair and not _warned:
        _warned = True
        hang = (" In a forked process this can deadlock: use the 'spawn' or 'forkserver' start method, or"
                if _forked else "")
        warnings.warn(f"this process runs torch with {have} threads, more than its share of {fair} ({why}); "
                      f"processes side by side then starve each other.{hang} pass torch_threads={fair} "
                      f"(or --threads {fair}, or {THREADS_ENV}={fair}), or leave it unset in worker processes. "
                      "On CPU, one batched gym.make_vec(id, num_envs=N) in one process is faster than N workers.",
                      RuntimeWarning, stacklevel=3)
    return have


def add_argument(parser):
    """The command line's ``--threads N`` (read it back with ``apply(args.threads)``)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: all cores in the main process, a fair share in a "
                             f"worker; {THREADS_ENV} also sets it)")


