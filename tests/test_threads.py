"""camworld.threads: the thread policy, and the learned world under Gymnasium's AsyncVectorEnv and
SB3's SubprocVecEnv (worker processes that must not starve or deadlock each other). No timings:
``camworld bench env --vectorization 2 4`` measures speed.

These tests change torch's thread count on purpose (that is what they check) and restore 1 after.
"""

from __future__ import annotations

import multiprocessing
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import camworld  # noqa: F401  (registers the ids)
from camworld import threads
from camworld.world import World


@pytest.fixture
def worker_process(monkeypatch):
    """This process counts as one of ``cores`` workers (share: 1 thread); the warning may fire again."""
    monkeypatch.setenv(threads.WORKERS_ENV, str(threads.cores()))
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "_warned", False)
    yield
    torch.set_num_threads(1)


def tiny_kwargs(ckpt: str, **extra) -> dict:
    return dict(checkpoint=ckpt, device="cpu", frames_per_step=2, context_size=4, **extra)


def test_fair_share():
    assert threads.fair_share(16, 4) == 4
    assert threads.fair_share(16, 3) == 5
    assert threads.fair_share(2, 4) == 1            # at least one thread
    assert threads.fair_share(64, None) == 1        # workers unknown: one thread


def test_main_process_keeps_its_threads(monkeypatch):
    monkeypatch.delenv(threads.WORKERS_ENV, raising=False)
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    assert not threads.is_worker()
    assert threads.share()[0] == threads.cores()
    assert threads.apply() == torch.get_num_threads() == 1      # conftest's 1 stays


def test_workers_env_sets_the_share(monkeypatch):
    monkeypatch.setenv(threads.WORKERS_ENV, "2")
    assert threads.is_worker()
    assert threads.share()[0] == max(1, threads.cores() // 2)
    monkeypatch.setenv(threads.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="CAMWORLD_WORKERS must be an int >= 1"):
        threads.share()


def test_worker_takes_its_share_and_override_warns_once(model, worker_process):
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = World(model)                                  # the policy: a worker drops to its share
    assert w.torch_threads == torch.get_num_threads() == 1
    with pytest.warns(RuntimeWarning, match=r"more than its share of 1 .*torch_threads=1"):
        w = World(model, torch_threads=2)                 # an explicit setting wins, with a warning
    assert w.torch_threads == torch.get_num_threads() == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # once per process
        World(model, torch_threads=2)
    with pytest.raises(ValueError, match="torch_threads must be an int >= 1"):
        World(model, torch_threads=0)


def test_threads_env_var_overrides(model, worker_process, monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    with pytest.warns(RuntimeWarning, match="CAMWORLD_TORCH_THREADS=1"):
        assert World(model).torch_threads == 2


def test_env_kwarg_and_sim_rejects_it(tiny_checkpoint, worker_process):
    env = gym.make("ContextAsMemory-v0", **tiny_kwargs(tiny_checkpoint, torch_threads=1))
    assert env.unwrapped.torch_threads == torch.get_num_threads() == 1
    env.close()
    with pytest.raises(ValueError, match="torch_threads= only applies to the learned world"):
        gym.make("CamWorld-v0", frame_size=32, torch_threads=1)


def _share_in_child(_):
    return threads.share(), threads.sibling_workers()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_workers_count_their_siblings(method):
    with multiprocessing.get_context(method).Pool(2) as pool:
        out = pool.map(_share_in_child, [0, 1])
    for (n, why), siblings in out:
        assert siblings == 2
        if method == "fork":
            assert n == 1 and "forked" in why
        else:
            assert n == threads.fair_share(threads.cores(), 2) and "2 worker processes" in why


def test_async_vector_env_matches_sync(tiny_checkpoint):
    """AsyncVectorEnv (fork, after this process used a 2-thread pool: without the policy the workers
    deadlock) completes reset and steps, with the same observations as SyncVectorEnv."""
    kw = tiny_kwargs(tiny_checkpoint)
    actions = [np.array([1, 3]), np.array([4, 0]), np.array([2, 5])]
    torch.set_num_threads(2)
    try:
        torch.nn.functional.gelu(torch.randn(64, 256, 256)).sum()      # the parent's OpenMP pool is live
        venv = gym.make_vec("ContextAsMemory-v0", num_envs=2, vectorization_mode="async",
                            vector_kwargs={"context": "fork"}, **kw)
    finally:
        torch.set_num_threads(1)
    try:
        venv.reset_async(seed=[5, 6])
        obs_async = [venv.reset_wait(timeout=120)[0]]
        for a in actions:
            venv.step_async(a)
            obs_async.append(venv.step_wait(timeout=120)[0])
        assert venv.get_attr("torch_threads") == (1, 1)
    finally:
        venv.close(terminate=True)
    sync = gym.make_vec("ContextAsMemory-v0", num_envs=2, vectorization_mode="sync", **kw)
    obs_sync = [sync.reset(seed=[5, 6])[0]] + [sync.step(a)[0] for a in actions]
    sync.close()
    assert obs_async[0].shape == (2, 32, 32, 3)
    for a, s in zip(obs_async, obs_sync):
        np.testing.assert_array_equal(a, s)


def _make_tiny(ckpt):
    return lambda: gym.make("ContextAsMemory-v0", **tiny_kwargs(ckpt, max_episode_steps=20))


def test_sb3_subproc_vec_env_trains_ppo(tiny_checkpoint):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from camworld.agents import policy_for

    venv = SubprocVecEnv([_make_tiny(tiny_checkpoint) for _ in range(2)])      # SB3's default: forkserver
    try:
        share = threads.fair_share(threads.cores(), 2)          # each worker: at most its share (the policy
        assert all(1 <= n <= share for n in venv.get_attr("torch_threads"))   # lowers, never raises, threads)
        policy, pkw = policy_for(venv.observation_space, features_dim=16)
        model = PPO(policy, venv, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs=pkw, seed=0)
        model.learn(total_timesteps=256)
        assert model.num_timesteps >= 256
    finally:
        venv.close()
