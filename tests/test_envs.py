"""camworld.envs: every registered id against Gymnasium's and SB3's checkers, determinism, render,
pickling; action/option validation; walls; the batched vector env and its SB3 adapter.

Learned-world ids run a tiny, untrained checkpoint written once per session (the real WorldModel
and World code paths, seconds on a CPU); the sim twin runs at 32x32.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # render_mode="human" without a screen

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest

import camworld  # noqa: F401  (registers the ids)
from camworld.envs import ENV_IDS, ENV_TABLE, CamWorldVectorEnv, DISCRETE_ACTIONS

SIM_IDS = [row[0] for row in ENV_TABLE if row[1] == "sim"]
MODEL_IDS = [row[0] for row in ENV_TABLE if row[1] == "model"]


def kwargs_for(env_id: str, ckpt: str, **extra) -> dict:
    """Tiny settings: 2 frames per step, k = 4; 32x32 frames (the tiny checkpoint's size)."""
    kw = dict(frames_per_step=2, context_size=4)
    if gym.spec(env_id).kwargs["backend"] == "model":
        kw.update(checkpoint=ckpt, device="cpu")
    else:
        kw.update(frame_size=32)
    kw.update(extra)
    return kw


def make(env_id, ckpt, **extra):
    return gym.make(env_id, **kwargs_for(env_id, ckpt, **extra))


def test_every_table_row_is_registered():
    assert set(ENV_IDS) == {r[0] for r in ENV_TABLE}
    for env_id, backend, task, steps in ENV_TABLE:
        spec = gym.spec(env_id)
        assert spec.kwargs == {"backend": backend, "task": task}
        assert spec.max_episode_steps == steps and spec.vector_entry_point is not None


# ---------------------------------------------------------------- every registered id


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id, tiny_checkpoint):
    from gymnasium.utils.env_checker import check_env

    env = make(env_id, tiny_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # "observation space smaller than 36x36" etc.
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id, tiny_checkpoint):
    from stable_baselines3.common.env_checker import check_env

    env = make(env_id, tiny_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(env.unwrapped, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_episode(env_id, tiny_checkpoint):
    runs = []
    for _ in range(2):
        env = make(env_id, tiny_checkpoint)
        obs, info = env.reset(seed=7)
        trace = [(obs, 0.0, info)]
        for a in (1, 3, 1, 6):
            obs, r, term, trunc, info = env.step(a)
            assert type(r) is float and type(term) is bool and type(trunc) is bool
            trace.append((obs, r, info))
            if term or trunc:
                break
        env.close()
        runs.append(trace)
    for (o1, r1, i1), (o2, r2, i2) in zip(*runs):
        for k in (o1 if isinstance(o1, dict) else {"": o1}):
            np.testing.assert_array_equal(o1[k] if k else o1, o2[k] if k else o2)
        assert r1 == r2
        np.testing.assert_array_equal(i1["frames"], i2["frames"])
        np.testing.assert_array_equal(i1["pose"], i2["pose"])
        np.testing.assert_array_equal(i1["retrieved"], i2["retrieved"])
        assert i1["scene_seed"] == i2["scene_seed"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_and_info(env_id, tiny_checkpoint):
    from camworld.sim import EVAL_SEED_OFFSET

    env = make(env_id, tiny_checkpoint, render_mode="rgb_array")
    obs, info = env.reset(seed=1)
    frame = obs["frame"] if isinstance(obs, dict) else obs
    H, W = env.unwrapped.frame_size
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (H, W, 3)
    np.testing.assert_array_equal(img, frame)
    assert not np.shares_memory(img, frame)
    assert info["scene_seed"] >= EVAL_SEED_OFFSET                       # held-out scenes by default
    obs, _, _, _, info = env.step(0)
    T = env.unwrapped.frames_per_step
    assert info["frames"].shape == (T, H, W, 3) and info["poses"].shape == (T, 3)
    assert info["extrinsics"].shape == (3, 4) and info["retrieved"].shape == (4,)
    assert info["retrieved"].dtype == np.int64 and info["memory_size"] >= 1 + T
    np.testing.assert_array_equal(info["frames"][-1], obs["frame"] if isinstance(obs, dict) else obs)
    env.close()


@pytest.mark.parametrize("env_id", ["CamWorld-v0", "ContextAsMemory-GoalView-v0"])
def test_render_human(env_id, tiny_checkpoint):
    pytest.importorskip("pygame")
    env = make(env_id, tiny_checkpoint, render_mode="human")
    env.reset(seed=0)
    env.step(1)
    assert env.render() is None
    env.close()
    env.close()                                                         # closing twice is fine


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spec_pickles(env_id, tiny_checkpoint):
    env = make(env_id, tiny_checkpoint)
    spec = pickle.loads(pickle.dumps(env.spec))
    assert spec == env.spec
    env2 = spec.make()
    assert env2.observation_space == env.observation_space and env2.action_space == env.action_space
    env.close()
    env2.close()


# ---------------------------------------------------------------- action types, validation, walls


@pytest.mark.parametrize("action_type", ["continuous", "pose"])
def test_other_action_types_pass_checkers(action_type, tiny_checkpoint):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for env_id in ("CamWorld-Explore-v0", "ContextAsMemory-Return-v0"):
        env = make(env_id, tiny_checkpoint, action_type=action_type)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            check_env(env.unwrapped)
            sb3_check_env(env.unwrapped)
        env.close()


def test_action_semantics(tiny_checkpoint):
    env = make("CamWorld-v0", tiny_checkpoint, action_type="continuous")
    _, info = env.reset(seed=0, options={"scene_seed": 3})
    x, y, yaw = info["pose"]
    b = env.unwrapped.bounds
    _, _, _, _, info = env.step(np.array([0.0, 0.0, b.max_turn_deg], np.float32))
    assert np.isclose(info["pose"][2], np.angle(np.exp(1j * (yaw + np.deg2rad(b.max_turn_deg)))))
    np.testing.assert_allclose(info["pose"][:2], (x, y))
    env.close()
    env = make("CamWorld-v0", tiny_checkpoint, action_type="pose")
    _, info = env.reset(seed=0, options={"scene_seed": 3})
    target = info["pose"] + np.array([0.0, 0.0, 0.05])
    _, _, _, _, info = env.step(target.astype(np.float32))
    np.testing.assert_allclose(info["pose"], target, atol=1e-6)
    assert not info["pose_clipped"]
    _, _, _, _, info = env.step(np.array([500.0, 500.0, 0.0], np.float32))    # far away: one step's worth
    assert info["pose_clipped"] or info["collided"]
    env.close()


def test_action_validation(tiny_checkpoint):
    env = make("CamWorld-v0", tiny_checkpoint)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(len(DISCRETE_ACTIONS))
    with pytest.raises(ValueError, match="one integer"):
        env.step(1.5)
    env.close()
    env = make("CamWorld-v0", tiny_checkpoint, action_type="continuous")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="exceeds the per-step bound"):
        env.step(np.array([100.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0, 0.0]))
    env.close()
    for bad in (dict(action_type="joystick"), dict(frames_per_step=0), dict(render_mode="window"),
                dict(retrieval="nearest-neighbour"), dict(context_size=0), dict(frame_size=(2, 2))):
        with pytest.raises(ValueError):
            make("CamWorld-v0", tiny_checkpoint, **bad)
    with pytest.raises(ValueError, match="unknown task"):
        make("CamWorld-v0", tiny_checkpoint, task="fetch")
    with pytest.raises(ValueError, match="generates 32x32"):
        make("ContextAsMemory-v0", tiny_checkpoint, frame_size=64)


TURN_STOP = ["noop", "turn_left", "turn_right"]


def test_a_reduced_action_set_numbers_its_actions_in_the_order_given(tiny_checkpoint):
    """discrete_actions=[...]: Discrete(len), index i is the i-th name's move, in the twin, the learned world and
    the batched vector env alike; an index past the subset is refused with the subset's names."""
    full = make("CamWorld-v0", tiny_checkpoint)
    assert full.action_space == gym.spaces.Discrete(7) and full.unwrapped.discrete_actions[3] == "turn_left"
    for env_id in ("CamWorld-v0", "ContextAsMemory-v0"):
        env = make(env_id, tiny_checkpoint, discrete_actions=["turn_right", "noop", "turn_left"])
        assert env.action_space == gym.spaces.Discrete(3)
        assert env.unwrapped.discrete_actions == ("turn_right", "noop", "turn_left")
        for sub, whole in ((0, 4), (1, 0), (2, 3)):     # the same move as the full set's index
            _, info = env.reset(seed=5)
            full.reset(seed=5)
            _, _, _, _, info = env.step(sub)
            _, _, _, _, info_full = full.step(whole)
            np.testing.assert_allclose(info["pose"], info_full["pose"])
        with pytest.raises(ValueError, match="out of range \\[0, 3\\).*0=turn_right, 1=noop, 2=turn_left"):
            env.step(3)
        env.close()
    full.close()
    venv = gym.make_vec("CamWorld-v0", num_envs=2, **kwargs_for("CamWorld-v0", tiny_checkpoint),
                        discrete_actions=TURN_STOP)
    assert venv.single_action_space == gym.spaces.Discrete(3)
    _, info = venv.reset(seed=1)
    _, _, _, _, after = venv.step(np.array([1, 2]))
    turned = np.rad2deg(np.angle(np.exp(1j * (after["pose"][:, 2] - info["pose"][:, 2]))))
    assert turned[0] > 1 and turned[1] < -1        # left, then right
    venv.close()
    from camworld.envs.multi_agent import parallel_env   # the many-camera env passes it to every camera

    ma = parallel_env(n_agents=2, discrete_actions=["noop", "turn_left"])
    assert ma.action_space("camera_0") == gym.spaces.Discrete(2)
    _, info = ma.reset(seed=0)
    _, _, _, _, after = ma.step({a: 1 for a in ma.agents})
    assert after["camera_1"]["pose"][2] != info["camera_1"]["pose"][2]
    ma.close()


def test_a_reduced_action_set_rejects_bad_names_and_other_action_types(tiny_checkpoint):
    for bad, match in ((["noop", "jump"], "unknown action name.*jump"), (["noop", "noop"], "twice"),
                       ([], "at least one"), ("noop", "list of action names")):
        with pytest.raises(ValueError, match=match):
            make("CamWorld-v0", tiny_checkpoint, discrete_actions=bad)
    with pytest.raises(ValueError, match="subset of the discrete actions.*continuous"):
        make("CamWorld-v0", tiny_checkpoint, action_type="continuous", discrete_actions=TURN_STOP)


def test_scripted_policies_follow_a_reduced_action_set(tiny_checkpoint):
    """The goal-pose oracle steers with the env's own numbering (turn-and-stop glance tours need nothing else),
    and a policy that needs an action the subset leaves out says which."""
    from camworld.agents import RandomWalkPolicy, evaluate
    from camworld.agents.benchmark import GoalPoseOracle

    kw = dict(kwargs_for("CamWorld-GoalView-v0", tiny_checkpoint), excursion="glance-away", stop_to_arrive=True,
              max_episode_steps=8)
    res = evaluate(GoalPoseOracle, "CamWorld-GoalView-v0", episodes=3, seed=100_000,
                   env_kwargs=dict(kw, discrete_actions=TURN_STOP))
    assert res["success_rate"] == 1.0
    res = evaluate(GoalPoseOracle, "CamWorld-GoalView-v0", episodes=3, seed=100_000,
                   env_kwargs=dict(kw, discrete_actions=["turn_right", "turn_left", "noop"]))
    assert res["success_rate"] == 1.0
    env = make("CamWorld-v0", tiny_checkpoint, discrete_actions=TURN_STOP)
    obs, info = env.reset(seed=0)
    policy = RandomWalkPolicy(env, seed=0, forward_prob=1.0)
    with pytest.raises(ValueError, match="needs the action 'forward'"):
        policy.act(obs, info)
    env.close()


def test_option_validation(tiny_checkpoint):
    from camworld.sim import STYLES

    env = make("CamWorld-v0", tiny_checkpoint)
    env.reset(seed=0)       # Gymnasium's PassiveEnvChecker breaks if the very first reset raises
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"scene": 3})
    with pytest.raises(ValueError, match="ContextAsMemory"):
        env.reset(options={"image": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match="style"):
        env.reset(options={"style": "no-such-style"})
    with pytest.raises(ValueError, match="scene_seed"):
        env.reset(options={"scene_seed": -1})
    with pytest.raises(ValueError, match="pose"):
        env.reset(options={"pose": (1.0, 2.0)})
    with pytest.raises(ValueError, match="wall"):
        env.reset(options={"scene_seed": 3, "pose": (1e4, 1e4, 0.0)})
    style = list(STYLES)[0]
    obs, info = env.reset(seed=0, options={"scene_seed": 12, "style": style, "prompt": "a test"})
    assert info["scene_seed"] == 12 and info["prompt"] == "a test"
    env.close()

    env = make("ContextAsMemory-v0", tiny_checkpoint)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="uint8"):
        env.reset(options={"image": np.zeros((32, 32, 3), np.float32)})
    with pytest.raises(ValueError, match="alpha"):
        env.reset(options={"image": np.zeros((32, 32, 4), np.uint8)})
    with pytest.raises(ValueError, match="one or the other"):
        env.reset(options={"image": np.zeros((32, 32, 3), np.uint8), "scene_seed": 3})
    with pytest.warns(UserWarning, match="resized"):
        obs, info = env.reset(seed=0, options={"image": np.full((48, 80, 3), 200, np.uint8)})
    assert obs.shape == (32, 32, 3) and info["scene_seed"] == -1
    np.testing.assert_array_equal(info["pose"], np.zeros(3))
    for _ in range(3):                                               # free camera: no walls to hit
        obs, _, _, _, info = env.step(1)
        assert not info["collided"]
    env.close()


def test_walls_stop_the_camera(tiny_checkpoint):
    env = make("CamWorld-v0", tiny_checkpoint)
    _, info = env.reset(seed=0, options={"scene_seed": 5})
    scene = env.unwrapped.scene
    collided = False
    for _ in range(40):                                              # straight ahead until a wall
        _, _, _, _, info = env.step(1)
        assert scene.is_free(info["poses"][:, :2], clearance=0.29).all()
        collided |= info["collided"]
    assert collided
    env.close()


# ---------------------------------------------------------------- the batched vector env


def test_make_vec_is_batched_same_step(tiny_checkpoint):
    from gymnasium.vector import AutoresetMode

    venv = gym.make_vec("ContextAsMemory-v0", num_envs=3, **kwargs_for("ContextAsMemory-v0", tiny_checkpoint))
    assert isinstance(venv, CamWorldVectorEnv) and venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.backend.num_worlds == 3 and all(e.backend is venv.backend for e in venv.envs)
    obs, info = venv.reset(seed=0)
    assert obs.shape == (3, 32, 32, 3) and info["pose"].shape == (3, 3) and info["_pose"].all()
    obs, rew, term, trunc, info = venv.step(np.array([1, 3, 0]))
    assert obs.shape == (3, 32, 32, 3) and rew.dtype == np.float64 and term.dtype == bool
    assert info["frames"].shape == (3, 2, 32, 32, 3)
    venv.close()


def test_vector_matches_single_envs(tiny_checkpoint):
    """The sim twin is exact: batched envs see what single envs with the same seeds see."""
    kw = kwargs_for("CamWorld-Explore-v0", tiny_checkpoint)
    venv = gym.make_vec("CamWorld-Explore-v0", num_envs=2, **kw)
    vobs, _ = venv.reset(seed=[10, 11])
    actions = [(1, 3), (3, 1), (1, 1)]
    vtrace = [vobs]
    vrew = []
    for a in actions:
        vobs, r, *_ = venv.step(np.array(a))
        vtrace.append(vobs)
        vrew.append(r)
    venv.close()
    for i, seed in enumerate((10, 11)):
        env = gym.make("CamWorld-Explore-v0", **kw)
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, vtrace[0][i])
        for j, a in enumerate(actions):
            obs, r, *_ = env.step(a[i])
            np.testing.assert_array_equal(obs, vtrace[j + 1][i])
            assert r == vrew[j][i]
        env.close()


def test_vector_autoreset_same_step(tiny_checkpoint):
    kw = kwargs_for("CamWorld-Return-v0", tiny_checkpoint, max_episode_steps=2)
    venv = gym.make_vec("CamWorld-Return-v0", num_envs=2, **kw)
    obs0, info0 = venv.reset(seed=3)
    obs1, _, term, trunc, info1 = venv.step(np.array([0, 0]))
    assert not (term | trunc).any() and "final_obs" not in info1
    obs2, _, term, trunc, info2 = venv.step(np.array([0, 0]))
    assert trunc.all() and not term.any()
    assert info2["_final_obs"].all() and info2["_final_info"].all()
    for i in range(2):
        # the final observation is the last step's frame; the returned one starts a new episode
        np.testing.assert_array_equal(info2["final_obs"][i], info2["final_info"]["frames"][i][-1])
        assert info2["frames"][i].shape[0] > 2                       # the new episode's start + excursion
        np.testing.assert_array_equal(obs2[i], info2["frames"][i][-1])
    assert info2["final_info"]["pose"].shape == (2, 3)
    obs3, *_ = venv.step(np.array([0, 0]))                           # the new episodes go on
    assert obs3.shape == obs2.shape
    venv.close()


def test_vector_reset_mask_and_errors(tiny_checkpoint):
    venv = gym.make_vec("CamWorld-v0", num_envs=2, **kwargs_for("CamWorld-v0", tiny_checkpoint))
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.array([0, 0]))
    obs, _ = venv.reset(seed=0)
    obs2, info = venv.reset(seed=[None, 5], options={"reset_mask": np.array([False, True])})
    np.testing.assert_array_equal(obs2[0], obs[0])
    assert info["_pose"].tolist() == [False, True]
    with pytest.raises(ValueError):
        venv.step(np.array([0, 9]))
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec("CamWorld-v0", num_envs=2, render_mode="human", **kwargs_for("CamWorld-v0", tiny_checkpoint))
    venv.close()


@pytest.mark.parametrize("task", ["", "-Return"])
def test_twin_and_learned_world_retrieve_the_same_frames(task, tiny_checkpoint):
    """One World implementation of memory and retrieval for both frame sources: the same episode
    (seed, scene, actions, scripted excursion) retrieves the same memory indices in the twin and in
    the learned world, step by step."""
    twin = make(f"CamWorld{task}-v0", tiny_checkpoint)
    learned = make(f"ContextAsMemory{task}-v0", tiny_checkpoint)
    assert twin.unwrapped.bounds == learned.unwrapped.bounds              # same motion per action
    infos = [env.reset(seed=3)[1] for env in (twin, learned)]
    actions = [3, 3, 1, 4, 4, 4, 2, 0, 3, 5]
    for t in range(len(actions) + 1):
        a, b = infos
        np.testing.assert_array_equal(a["poses"], b["poses"])
        np.testing.assert_array_equal(a["retrieved"], b["retrieved"])
        assert a["memory_size"] == b["memory_size"]
        if t == len(actions):
            break
        infos = [env.step(actions[t])[4] for env in (twin, learned)]
    assert (infos[0]["retrieved"] >= 0).sum() > 1                           # it did retrieve from memory
    twin.close()
    learned.close()


def test_env_over_a_world_you_built(tiny_checkpoint, start):
    from camworld.envs import CamWorldEnv, WorldSpec
    from camworld.sim.frames import SimFrames
    from camworld.world import World, load_world_model

    twin = CamWorldEnv(backend=World(SimFrames((32, 32)), num_worlds=2, context_size=4), slot=1)
    obs, info = twin.reset(seed=0)
    assert obs.shape == (32, 32, 3) and twin.backend.needs_scene
    assert twin.step(3)[4]["memory_size"] == 5                  # 1 start frame + 4 frames of a step
    learned = CamWorldEnv(backend=World(load_world_model(tiny_checkpoint, "cpu"), context_size=4))
    with pytest.raises(ValueError, match="options\\['image'\\] needs the learned world"):
        twin.reset(options={"image": start[0]})
    assert learned.reset(options={"image": start[0]})[0].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="checkpoint= only applies to the learned world"):
        WorldSpec("sim", checkpoint=tiny_checkpoint).build()
    with pytest.raises(ValueError, match="warp_space= only applies to the learned world"):
        WorldSpec("sim", warp_space="latents").build()
    env = gym.make("ContextAsMemory-v0", checkpoint=tiny_checkpoint, device="cpu", warp_space="latents",
                   network_context=4, warp_fill="border")
    w = env.unwrapped.backend.world
    assert (w.warp_space, w.network_context, w.warp_fill) == ("latents", 4, "border") and w.learned_depth is False
    env.close()
    with pytest.raises(ValueError, match="learned_depth= only applies to the learned world"):
        WorldSpec("sim", learned_depth=True).build()
    with pytest.raises(ValueError, match="needs a model with a depth net"):
        gym.make("ContextAsMemory-v0", checkpoint=tiny_checkpoint, device="cpu", learned_depth=True)
    with pytest.raises(ValueError, match="unknown backend"):
        WorldSpec("gan").build()


# ---------------------------------------------------------------- SB3 adapter


@pytest.mark.parametrize("env_id", ["CamWorld-Explore-v0", "ContextAsMemory-GoalView-v0"])
def test_sb3_adapter_trains_ppo(env_id, tiny_checkpoint):
    from stable_baselines3 import PPO

    from camworld.agents import policy_for
    from camworld.envs import make_sb3_vec_env

    venv = make_sb3_vec_env(env_id, num_envs=2, seed=0, **kwargs_for(env_id, tiny_checkpoint))
    assert venv.unwrapped.venv.backend.num_worlds == 2                 # one world (one model copy) for both
    policy, pkw = policy_for(venv.observation_space, features_dim=32)
    model = PPO(policy, venv, n_steps=8, batch_size=8, n_epochs=1, policy_kwargs=pkw, seed=0)
    model.learn(total_timesteps=16)
    assert model.num_timesteps >= 16
    venv.close()


def test_sb3_adapter_terminal_observation(tiny_checkpoint):
    from camworld.envs import make_sb3_vec_env

    kw = kwargs_for("CamWorld-v0", tiny_checkpoint, max_episode_steps=2)
    venv = make_sb3_vec_env("CamWorld-v0", num_envs=2, seed=0, monitor=False, **kw)
    first = venv.reset()
    _, _, dones, infos = venv.step(np.array([1, 1]))
    assert not dones.any() and all(i["TimeLimit.truncated"] is False for i in infos)
    obs, rewards, dones, infos = venv.step(np.array([1, 1]))
    assert dones.all() and rewards.dtype == np.float32
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (32, 32, 3)
        np.testing.assert_array_equal(info["terminal_observation"], info["frames"][-1])
        np.testing.assert_array_equal(obs[i], venv.reset_infos[i]["frames"][-1])
    assert first.shape == obs.shape
    venv.seed(4)
    a = venv.reset()
    venv.seed(4)
    np.testing.assert_array_equal(a, venv.reset())
    monitored = make_sb3_vec_env("CamWorld-v0", num_envs=2, seed=0, **kw)      # VecMonitor-ed (the default)
    obs = monitored.reset()
    assert all("pose" in i for i in monitored.reset_infos)                        # the reset info reads through
    np.testing.assert_array_equal(obs[1], monitored.reset_infos[1]["frames"][-1])
    venv.close()


# ---------------------------------------------------------------- shipped checkpoint, benchmark


def test_shipped_checkpoint_default():
    from camworld.model import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.exists():
        pytest.skip(f"no shipped checkpoint at {DEFAULT_CHECKPOINT} yet")
    env = gym.make("ContextAsMemory-v0", device="cpu")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.shape == env.observation_space.shape and info["frames"].shape[0] == 4
    env.close()


def test_bench_env_runs(tiny_checkpoint, capsys):
    from camworld.cli import main

    assert main(["bench", "env", "--worlds", "sim", "model", "--num-envs", "1", "2", "--steps", "1",
                 "--frames-per-step", "2", "--context-size", "4", "--checkpoint", tiny_checkpoint, "--device", "cpu",
                 "--vectorization", "2"]) == 0
    out = capsys.readouterr().out
    assert "| model | 2 | batched |" in out and "| sim | 2 | separate |" in out
    for world in ("model", "sim"):   # gym.make_vec's modes, as ratios against sync
        assert f"| {world} | 2 | sync |" in out and f"| {world} | 2 | async (2 workers) |" in out
        assert f"| {world} | 2 | batched |" in out.split("gym.make_vec mode")[1]


def test_save_world_and_continue_it(tiny_checkpoint, tmp_path):
    kw = dict(checkpoint=tiny_checkpoint, frame_size=32, device="cpu")
    env = gym.make("ContextAsMemory-v0", **kw)
    env.reset(seed=3)
    env.step(3)
    env.step(1)
    env.unwrapped.save_world(tmp_path / "w")
    _, _, _, _, a = env.step(3)
    other = gym.make("ContextAsMemory-v0", **kw)
    other.reset(seed=5, options={"world": str(tmp_path / "w")})
    _, _, _, _, b = other.step(3)
    assert np.array_equal(a["frames"], b["frames"])
    with pytest.raises(ValueError, match="drop"):
        other.reset(options={"world": str(tmp_path / "w"), "scene_seed": 1})
    twin = gym.make("CamWorld-v0", frame_size=32)
    twin.reset(seed=0)
    with pytest.raises(ValueError, match="learned world"):
        twin.unwrapped.save_world(tmp_path / "x")
