"""camworld.envs.multi_agent: PettingZoo's API, seed and render tests on both backends; memory shared
across agents; team coverage; clear errors; the SB3 adapter (PPO runs a few steps).

The learned world runs a tiny, untrained checkpoint written once per session; the sim twin runs at
32x32. Two frames per step, k = 4.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # render_mode="human" without a screen

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test, render_test  # noqa: E402

from camworld.envs.multi_agent import MultiAgentCamWorld, env as aec_env, parallel_env  # noqa: E402

BACKENDS = ["sim", "model"]


def kw(backend: str, ckpt: str, **extra) -> dict:
    out = dict(backend=backend, n_agents=2, frames_per_step=2, context_size=4, max_cycles=4)
    out.update(dict(checkpoint=ckpt, device="cpu") if backend == "model" else dict(frame_size=32))
    out.update(extra)
    return out


# ---------------------------------------------------------------- PettingZoo's own tests


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("task", ["coverage", "return"])
def test_parallel_api(backend, task, tiny_checkpoint):
    env = parallel_env(**kw(backend, tiny_checkpoint, task=task))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # the test's reset(options={"options": 1}) is warned about
        parallel_api_test(env, num_cycles=4)
    assert env.agents == []
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_seed(backend, tiny_checkpoint):
    parallel_seed_test(lambda: parallel_env(**kw(backend, tiny_checkpoint, task="explore")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_render(backend, tiny_checkpoint):
    pytest.importorskip("pygame")
    render_test(lambda render_mode=None: aec_env(render_mode=render_mode, **kw(backend, tiny_checkpoint)))
    env = parallel_env(render_mode="rgb_array", **kw(backend, tiny_checkpoint, n_agents=3))
    assert env.render().shape == (32, 3 * 32 + 2, 3)                   # before reset: black
    obs, _ = env.reset(seed=0)
    img = env.render()
    np.testing.assert_array_equal(img[:, 33:65], obs["camera_1"])
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_spaces_are_the_same_objects_and_episodes_repeat(backend, tiny_checkpoint):
    env = parallel_env(**kw(backend, tiny_checkpoint))
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a) and env.action_space(a) is env.action_space(a)
    runs = []
    for _ in range(2):
        obs, infos = env.reset(seed=3)
        trace = [obs]
        for a in (1, 3, 4):
            trace.append(env.step({ag: a for ag in env.agents})[0])
        runs.append(trace)
    for o1, o2 in zip(*runs):
        for a in o1:
            np.testing.assert_array_equal(o1[a], o2[a])
    env.close()


# ---------------------------------------------------------------- one shared memory


def test_b_retrieves_what_a_generated(tiny_checkpoint):
    """A turns left first; B, standing where A stood, turns left later and is conditioned on A's frames."""
    env = parallel_env(**kw("model", tiny_checkpoint, task=None, max_cycles=10))
    env.reset(seed=0)
    pose = env.envs[0].pose.copy()
    obs, infos = env.reset(seed=0, options={"poses": {"camera_0": pose, "camera_1": pose}})
    world = env.backend.world
    assert world.shared_memory and len(world.memories) == 1
    for _ in range(3):
        env.step({"camera_0": 3, "camera_1": 0})            # A turns left (generating new views), B waits
    for _ in range(3):
        _, _, _, _, infos = env.step({"camera_0": 0, "camera_1": 3})   # B turns through A's views
        idx = world.last_retrieved[1]
        src = world.memories[0].sources[idx]
        generated_by_a = (src == 0) & (idx > 0)            # frame 0 is A's real start frame
        assert generated_by_a.any(), (idx, src)
        np.testing.assert_array_equal(infos["camera_1"]["retrieved_sources"][: len(src)], src)   # -1-padded
    assert infos["camera_1"]["memory_size"] == len(world.memories[0]) == 2 + 6 * 2 * 2
    env.close()


def test_team_coverage_reward_is_shared(tiny_checkpoint):
    env = parallel_env(**kw("sim", tiny_checkpoint, n_agents=3, task=["coverage", "coverage", "explore"]))
    _, infos = env.reset(seed=1)
    seen0 = infos["camera_0"]["team_seen_area_m2"]
    total = 0.0
    while env.agents:
        _, rew, _, _, infos = env.step({a: 1 for a in env.agents})
        assert rew["camera_0"] == rew["camera_1"] == infos["camera_2"]["team_new_area_m2"]
        assert rew["camera_2"] == infos["camera_2"]["new_area_m2"]             # explore: its own new area
        total += rew["camera_0"]
    assert total == pytest.approx(infos["camera_0"]["team_seen_area_m2"] - seen0)
    env.close()


# ---------------------------------------------------------------- errors


def test_clear_errors(tiny_checkpoint):
    env = parallel_env(**kw("sim", tiny_checkpoint))
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"camera_0": 0, "camera_1": 0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="must be a dict"):
        env.step([0, 0])
    with pytest.raises(ValueError, match="unknown agent"):
        env.step({"camera_0": 0, "camera_1": 0, "camera_7": 0})
    with pytest.raises(ValueError, match=r"missing actions for live agent\(s\) \['camera_1'\]"):
        env.step({"camera_0": 0})
    with pytest.raises(ValueError, match="action for camera_1: discrete action 9 is out of range"):
        env.step({"camera_0": 0, "camera_1": 9})
    with pytest.raises(ValueError, match="unknown agent"):
        env.observation_space("player_1")
    with pytest.raises(ValueError, match="options\\['poses'\\]"):
        env.reset(options={"poses": np.zeros((3, 3))})
    with pytest.warns(UserWarning, match="ignoring unknown reset option"):
        env.reset(options={"colour": "red"})
    env.close()
    with pytest.raises(ValueError, match="unknown task"):
        parallel_env(**kw("sim", tiny_checkpoint, task="fly"))
    with pytest.raises(ValueError, match="no agent's task accepts"):
        parallel_env(**kw("sim", tiny_checkpoint, task="coverage", excursion="rotate"))
    with pytest.raises(ValueError, match="n_agents"):
        parallel_env(**kw("sim", tiny_checkpoint, n_agents=0))

    done = parallel_env(**kw("sim", tiny_checkpoint, task=["return", None], arrival_distance=100.0,
                             arrival_yaw_deg=360.0))
    done.reset(seed=0)
    _, _, terms, _, _ = done.step({"camera_0": 0, "camera_1": 0})
    assert terms == {"camera_0": True, "camera_1": False} and done.agents == ["camera_1"]
    with pytest.raises(ValueError, match="done this episode"):
        done.step({"camera_0": 0, "camera_1": 0})
    done.close()


# ---------------------------------------------------------------- SB3


def test_sb3_adapter_idles_agents_that_finish_early(tiny_checkpoint):
    pytest.importorskip("stable_baselines3")
    from camworld.envs.multi_agent_sb3 import MultiAgentVecEnv

    venv = MultiAgentVecEnv(MultiAgentCamWorld(**kw("sim", tiny_checkpoint, task=["return", "explore"], max_cycles=3,
                                                    arrival_distance=100.0, arrival_yaw_deg=360.0)))
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (2, 32, 32, 3)
    _, rew, dones, infos = venv.step(np.array([0, 1]))
    assert dones.tolist() == [True, False] and "terminal_observation" in infos[0]
    _, rew, dones, infos = venv.step(np.array([0, 1]))
    assert dones.tolist() == [False, False] and infos[0]["idle"] and rew[0] == 0
    _, _, dones, infos = venv.step(np.array([0, 1]))                   # max_cycles: the world's episode ends
    assert dones.tolist() == [True, True] and infos[1]["TimeLimit.truncated"] and not infos[0]["TimeLimit.truncated"]
    assert venv.env.agents == venv.env.possible_agents                 # reset for the next episode
    venv.close()
    with pytest.raises(ValueError, match="equal spaces"):
        MultiAgentVecEnv(MultiAgentCamWorld(**kw("sim", tiny_checkpoint, task=["goal-view", "coverage"])))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ppo_trains_on_the_shared_world(backend, tiny_checkpoint):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    from camworld.agents import FrameCNN
    from camworld.envs.multi_agent import make_sb3_multi_agent_vec_env

    venv = make_sb3_multi_agent_vec_env(seed=0, **kw(backend, tiny_checkpoint, n_agents=3))
    model = PPO("CnnPolicy", venv, n_steps=4, batch_size=6, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=dict(features_extractor_class=FrameCNN, features_extractor_kwargs=dict(features_dim=32)))
    model.learn(total_timesteps=24)                                      # 8 world steps: one episode boundary
    assert model.num_timesteps == 24
    venv.close()


# ---------------------------------------------------------------- benchmark


def test_bench_shared_memory_runs(tiny_checkpoint):
    from camworld.envs.multi_agent import bench_shared_memory
    from camworld.envs.multi_agent_bench import markdown

    res = bench_shared_memory(tiny_checkpoint, 1, theta=60, device="cpu", progress=False)
    s = res["summary"]
    assert s["shared"]["a_in_context"][0] > 0 and s["separate"]["a_in_context"][0] == 0   # B retrieves A's frames
    assert "| revisit: B vs A at A's poses, PSNR |" in markdown(res)
