"""camworld.agents: scripted policies reach their goals, feature extractors fit camworld frames,
the train/evaluate helpers run end to end (tiny settings, sim twin at 32x32)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import camworld  # noqa: F401  (registers the ids)
from camworld.agents import RandomWalkPolicy, ReturnToStartPolicy, WaypointFollower, evaluate, steer

KW = dict(frame_size=32, frames_per_step=2, context_size=4)


@pytest.mark.parametrize("action_type", ["discrete", "continuous", "pose"])
def test_return_to_start_reaches_the_start(action_type):
    res = evaluate(ReturnToStartPolicy, "CamWorld-Return-v0", episodes=4, seed=0,
                   env_kwargs=dict(KW, action_type=action_type))
    assert res["success_rate"] == 1.0, res
    assert res["mean_return"] > 10.0                  # progress back plus the arrival bonus


def test_return_to_start_after_wandering():
    """Breadcrumbs: wander with a random walk (walls included), then the policy brings the camera home."""
    env = gym.make("CamWorld-v0", **KW)
    obs, info = env.reset(seed=3)
    walker, home = RandomWalkPolicy(env, seed=3), ReturnToStartPolicy(env)
    home.reset(obs, info)
    for _ in range(12):
        obs, _, _, _, info = env.step(walker.act(obs, info))
        home.observe(info)
    for _ in range(80):
        if home.done:
            break
        obs, _, _, _, info = env.step(home.act(obs, info))
    d = np.hypot(*(info["pose"][:2] - info["start_pose"][:2]))
    yaw = abs(np.angle(np.exp(1j * (info["pose"][2] - info["start_pose"][2]))))
    assert home.done and d <= home.tolerance and np.rad2deg(yaw) <= home.yaw_tolerance_deg
    env.close()


def test_waypoint_follower_reaches_goal_view_pose():
    env = gym.make("CamWorld-GoalView-v0", **KW)
    u = env.unwrapped
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        policy = WaypointFollower(env, info["goal_pose"][None])
        terminated = False
        for _ in range(60):
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            if terminated or truncated:
                break
        assert terminated and info["arrived"]
        assert info["goal_distance"] <= u.arrival_distance and info["goal_yaw_error_deg"] <= u.arrival_yaw_deg
    env.close()


def test_goal_frame_is_the_view_at_the_goal_pose():
    """In the sim twin, standing exactly at the goal pose reproduces the goal frame pixel for pixel."""
    env = gym.make("CamWorld-GoalView-v0", **KW, action_type="pose", arrival_distance=1e-6, arrival_yaw_deg=1e-4)
    obs, info = env.reset(seed=4)
    for _ in range(40):
        obs, _, terminated, _, info = env.step(info["goal_pose"].astype(np.float32))
        if np.allclose(info["pose"], info["goal_pose"], atol=1e-5):
            break
    np.testing.assert_array_equal(obs["frame"], obs["goal"])
    assert terminated and info["goal_psnr"] > 60.0
    env.close()


@pytest.mark.parametrize("action_type", ["discrete", "continuous", "pose"])
def test_random_walk_actions_are_valid(action_type):
    env = gym.make("CamWorld-Explore-v0", **KW, action_type=action_type)
    obs, info = env.reset(seed=0)
    policy = RandomWalkPolicy(env, seed=0)
    total = 0.0
    for _ in range(15):
        a = policy.act(obs, info)
        assert env.action_space.contains(np.asarray(a, env.action_space.dtype) if action_type != "discrete" else a)
        obs, r, _, _, info = env.step(a)
        total += r
    assert total > 0.0                                    # a wandering camera sees new floor
    env.close()


def test_steer_discrete_turns_then_goes():
    from camworld.envs import ActionBounds

    b = ActionBounds(4)
    assert steer((0, 0, 0), (5, 0, 0), "discrete", b) == 1            # ahead: forward
    assert steer((0, 0, 0), (0, 5, 0), "discrete", b) == 3            # to the left: turn left
    assert steer((0, 0, 0), (0, -5, 0), "discrete", b) == 4
    assert steer((0, 0, 0), (0.1, 0, np.pi / 2), "discrete", b) == 3  # there: turn to the goal yaw
    assert steer((0, 0, 0), (0.1, 0, 0.0), "discrete", b) == 0
    a = steer((0, 0, 0), (5, 5, 1.0), "continuous", b)
    assert np.all(np.abs(a) <= [b.max_move, b.max_move, b.max_turn_deg])


def test_feature_extractors():
    torch = pytest.importorskip("torch")
    from gymnasium import spaces

    from camworld.agents import FrameCNN, GoalFrameExtractor

    for size in (32, 64):
        box = spaces.Box(0, 255, (3, size, size), np.uint8)          # SB3 hands over channel-first
        net = FrameCNN(box, features_dim=64)
        assert net(torch.rand(2, 3, size, size)).shape == (2, 64)
        goal = GoalFrameExtractor(spaces.Dict({"frame": box, "goal": box}), features_dim=48)
        assert goal({"frame": torch.rand(2, 3, size, size), "goal": torch.rand(2, 3, size, size)}).shape == (2, 48)
    with pytest.raises(ValueError, match="keys"):
        GoalFrameExtractor(spaces.Dict({"frame": box}))


def test_goal_correlation_extractor_finds_which_way_the_goal_moved():
    """The Siamese column correlation peaks at the shift between frame and goal, untrained, on either side;
    shapes, clear errors, and policy_for picks it only for goal-view Dict spaces."""
    torch = pytest.importorskip("torch")
    from gymnasium import spaces

    from camworld.agents import GoalCorrelationExtractor, policy_for

    torch.manual_seed(0)
    box = spaces.Box(0, 255, (3, 64, 64), np.uint8)
    net = GoalCorrelationExtractor(spaces.Dict({"frame": box, "goal": box}), features_dim=32)
    assert net.columns == 16
    wide = torch.rand(2, 3, 1, 24).repeat_interleave(4, -1).expand(2, 3, 64, 96)   # a panorama of walls
    for shift_px in (16, -16, 32):
        a = max(-shift_px, 0)
        frame, goal = wide[..., a:a + 64], wide[..., a + shift_px:a + shift_px + 64]
        with torch.no_grad():
            cost = net.correlation(net._columns(frame)[0], net._columns(goal)[0])
            feats = net({"frame": frame, "goal": goal})
        assert cost.shape == (2, 31) and feats.shape == (2, 32)
        # the goal shows the frame's column x at x - shift: the curve peaks at s = shift / 4 columns
        assert (cost.argmax(1) - 15 == shift_px // 4).all(), (shift_px, cost.argmax(1))
    # one matmul over the Gram matrix equals the definition, shift by shift (and keeps the gradient)
    f = torch.nn.functional.normalize(torch.randn(3, 8, 7), dim=1).requires_grad_()
    g = torch.nn.functional.normalize(torch.randn(3, 8, 7), dim=1)
    ref = torch.stack([(f[..., max(s, 0):7 + min(s, 0)] * g[..., max(-s, 0):7 - max(s, 0)]).sum(1).mean(-1)
                       for s in range(-6, 7)], 1)
    fast = GoalCorrelationExtractor.correlation(f, g)
    assert fast.shape == (3, 13) and torch.allclose(fast, ref, atol=1e-6)
    fast.sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()
    with pytest.raises(ValueError, match="keys"):
        GoalCorrelationExtractor(spaces.Dict({"frame": box}))
    assert policy_for(spaces.Dict({"frame": box, "goal": box}), features="correlation")[0] == "MultiInputPolicy"
    with pytest.raises(ValueError, match="Dict"):
        policy_for(box, features="correlation")


def test_world_latents_are_the_worlds_own_and_goals_are_encoded_once_per_change(tiny_checkpoint):
    """Observations as the world model's latents: exactly what the world encodes, a goal re-encoded only
    when it changes (and then correctly), spaces and clear errors; the head trains on them."""
    torch = pytest.importorskip("torch")
    from gymnasium import spaces

    from camworld.agents import LatentGoalHead, WorldLatents, policy_for
    from camworld.model import WorldModel

    lat = WorldLatents(tiny_checkpoint)
    wm = WorldModel.load(tiny_checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    goals = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    want_f, want_g = wm.encode(frames).numpy(), wm.encode(goals).numpy()
    out = lat({"frame": frames, "goal": goals})
    assert out["frame"].dtype == np.float32 and np.allclose(out["frame"], want_f, atol=1e-5)
    assert np.allclose(out["goal"], want_g, atol=1e-5)
    calls = []
    real = lat.encode
    lat.encode = lambda x: (calls.append(len(x)), real(x))[1]
    goals2 = goals.copy()
    goals2[1] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)       # env 1 was reset: a new goal
    out2 = lat({"frame": frames, "goal": goals2})
    assert calls == [3, 1]                                               # frames, then only the new goal
    assert np.allclose(out2["goal"], wm.encode(goals2).numpy(), atol=1e-5)
    single = lat({"frame": frames[0], "goal": goals[0]})                 # one env's observation
    assert single["goal"].shape == (4, 8, 8) and np.allclose(single["goal"], want_g[0], atol=1e-5)
    box = spaces.Box(0, 255, (32, 32, 3), np.uint8)
    sp = lat.space(spaces.Dict({"frame": box, "goal": box}))
    assert sp["frame"].shape == (4, 8, 8) and sp["goal"].dtype == np.float32
    with pytest.raises(ValueError, match="encodes uint8"):
        lat.space(spaces.Box(0, 255, (64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="frames must be uint8"):
        lat.encode(frames.astype(np.float32))
    head = LatentGoalHead(sp, features_dim=24)
    y = head({k: torch.as_tensor(v) for k, v in out.items()})
    assert y.shape == (3, 24)
    y.sum().backward()
    assert all(p.grad is not None for p in head.head.parameters())
    with pytest.raises(ValueError, match="keys"):
        LatentGoalHead(spaces.Dict({"frame": sp["frame"]}))
    with pytest.raises(ValueError, match="features must be"):
        policy_for(box, features="pixels")
    assert policy_for(sp, features="world-latent")[1]["features_extractor_class"] is LatentGoalHead


def test_train_goal_view_on_world_latents_saves_and_loads(tmp_path):
    from stable_baselines3 import PPO

    from camworld.agents import WorldLatents, train

    zpath = tmp_path / "agent.zip"
    model = train("CamWorld-GoalView-v0", total_timesteps=16, num_envs=2, env_kwargs=dict(frame_size=64),
                  features_dim=32, features="world-latent", save=str(zpath),
                  algo_kwargs=dict(n_steps=8, batch_size=8, n_epochs=1))
    again = PPO.load(str(zpath), device="cpu")
    obs = {k: v[None] for k, v in model.observation_space.sample().items()}
    assert np.array_equal(model.predict(obs, deterministic=True)[0], again.predict(obs, deterministic=True)[0])
    res = evaluate(again, "CamWorld-GoalView-v0", episodes=1, env_kwargs=dict(frame_size=64), max_steps=3,
                   obs_transform=WorldLatents())
    assert np.isfinite(res["mean_return"])


def test_dagger_aggregates_oracle_labels_and_round_trips(tiny_checkpoint, tmp_path):
    """DAgger on world latents: every visited state is labelled with the goal-pose oracle's action, the
    dataset grows by one round of steps per round, the policy fits the labels it saw, and save/load keeps
    its predictions."""
    torch = pytest.importorskip("torch")
    from camworld.agents import WorldLatents
    from camworld.agents.imitation import DaggerAgent

    kw = dict(KW, excursion="rotate", stop_to_arrive=True)
    lat = WorldLatents(tiny_checkpoint)
    agent, data = DaggerAgent.train("CamWorld-GoalView-v0", lat, rounds=2, round_steps=6, num_envs=2, env_kwargs=kw,
                                    epochs=30, lr=3e-3)
    assert len(data["act"]) == 2 * 6 * 2 and data["obs"]["goal"].shape == (24, 4, 8, 8)
    assert set(np.unique(data["act"])) <= {0, 1, 3, 4}                   # the oracle: stop, forward, turns
    assert agent.meta["steps"] == 24 and agent.meta["rounds"] == 2
    with torch.no_grad():
        logits = agent.policy({k: torch.as_tensor(v) for k, v in data["obs"].items()})
    assert (logits.argmax(-1).numpy() == data["act"]).mean() > 0.6   # it fits what it was shown
    again, more = DaggerAgent.train("CamWorld-GoalView-v0", lat, rounds=1, round_steps=6, num_envs=2, env_kwargs=kw,
                                    agent=agent, data=data, start_round=2)
    assert len(more["act"]) == 36 and again.meta["rounds"] == 3
    agent.save(tmp_path / "policy")
    loaded = DaggerAgent.load(tmp_path / "policy.safetensors", lat)
    obs = {k: v[:3] for k, v in data["obs"].items()}
    assert np.array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    assert isinstance(loaded.predict({k: v[0] for k, v in obs.items()})[0], int)
    with pytest.raises(ValueError, match="discrete"):
        DaggerAgent.train("CamWorld-GoalView-v0", lat, rounds=1, round_steps=1, num_envs=1,
                          env_kwargs=dict(kw, action_type="continuous"))


def test_gaussian_blur_lowpasses_the_correlation_heads_input_and_keeps_a_uniform_frame():
    """The blur keeps a flat frame, keeps the mean of a point away from the border, spreads it by about sigma,
    is off at 0, refuses a bad sigma, and reaches the correlation head (its features change) and policy_for."""
    torch = pytest.importorskip("torch")
    from gymnasium import spaces

    from camworld.agents import GoalCorrelationExtractor, policy_for
    from camworld.agents.features import GaussianBlur

    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(GaussianBlur(2.0)(flat), flat, atol=1e-6)
    dot = torch.zeros(1, 1, 33, 33)
    dot[..., 16, 16] = 1.0
    out = GaussianBlur(1.5)(dot)[0, 0]
    assert abs(float(out.sum()) - 1.0) < 1e-5 and float(out.max()) < 0.1
    xs = torch.arange(33.0) - 16
    sd = float((out.sum(0) * xs ** 2).sum().sqrt())
    assert abs(sd - 1.5) < 0.1
    assert GaussianBlur(0.0)(dot) is dot
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="blur"):
            GaussianBlur(bad)
    box = spaces.Box(0, 255, (3, 32, 32), np.uint8)
    space = spaces.Dict({"frame": box, "goal": box})
    torch.manual_seed(0)
    sharp = GoalCorrelationExtractor(space, features_dim=16)
    torch.manual_seed(0)
    soft = GoalCorrelationExtractor(space, features_dim=16, blur=2.0)
    obs = {"frame": torch.rand(2, 3, 32, 32), "goal": torch.rand(2, 3, 32, 32)}
    with torch.no_grad():
        assert not torch.allclose(sharp(obs), soft(obs))
    assert policy_for(space, features="correlation", blur=2.0)[1]["features_extractor_kwargs"]["blur"] == 2.0
    with pytest.raises(ValueError, match="correlation"):
        policy_for(space, features="cnn", blur=2.0)


def test_dagger_on_pixels_with_the_correlation_head(tmp_path):
    """DAgger with latents=None: the policy sees the goal-view frames (uint8, stored as such) through the
    correlation head, fits the oracle's labels, round-trips, and refuses a task without a goal frame."""
    torch = pytest.importorskip("torch")
    from camworld.agents import GoalCorrelationExtractor
    from camworld.agents.imitation import DaggerAgent

    kw = dict(KW, excursion="glance", max_episode_steps=6)
    agent, data = DaggerAgent.train("CamWorld-GoalView-v0", None, rounds=2, round_steps=6, num_envs=2,
                                    env_kwargs=kw, epochs=30, lr=3e-3, features_dim=32)
    assert data["obs"]["frame"].dtype == np.uint8 and data["obs"]["goal"].shape == (24, 32, 32, 3)
    assert set(np.unique(data["act"])) <= {0, 3, 4}                      # glance goals: turn left, right (or stop)
    assert isinstance(agent.policy.features, GoalCorrelationExtractor) and agent.meta["features"] == "correlation"
    with torch.no_grad():
        logits = agent.policy({k: torch.as_tensor(v) for k, v in data["obs"].items()})
    assert (logits.argmax(-1).numpy() == data["act"]).mean() > 0.6       # it fits what it was shown
    agent.save(tmp_path / "policy")
    loaded = DaggerAgent.load(tmp_path / "policy.safetensors", None)
    obs = {k: v[:3] for k, v in data["obs"].items()}
    assert np.array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    soft, _ = DaggerAgent.train("CamWorld-GoalView-v0", None, rounds=1, round_steps=2, num_envs=2, env_kwargs=kw,
                                features_dim=32, blur=1.5)                 # the input low-pass travels with the agent
    soft.save(tmp_path / "soft")
    back = DaggerAgent.load(tmp_path / "soft.safetensors", None)
    assert back.meta["blur"] == 1.5 and back.policy.features.blur.sigma == 1.5
    assert np.array_equal(soft.predict(obs)[0], back.predict(obs)[0])
    res = evaluate(loaded, "CamWorld-GoalView-v0", episodes=2, seed=0, env_kwargs=kw)
    assert np.isfinite(res["mean_return"])
    with pytest.raises(ValueError, match="goal-view"):
        DaggerAgent.train("CamWorld-Return-v0", None, rounds=1, round_steps=1, num_envs=1, env_kwargs=KW)


def test_train_and_evaluate_goal_view():
    from camworld.agents import train

    model = train("CamWorld-GoalView-v0", total_timesteps=16, num_envs=2, env_kwargs=KW, features_dim=32,
                  algo_kwargs=dict(n_steps=8, batch_size=8, n_epochs=1))
    res = evaluate(model, "CamWorld-GoalView-v0", episodes=1, env_kwargs=KW, max_steps=5)
    assert set(res) >= {"mean_return", "success_rate", "final_goal_psnr"} and np.isfinite(res["mean_return"])
    with pytest.raises(ValueError, match="unknown SB3 algorithm"):
        train("CamWorld-v0", algo="NoSuchAlgo", env_kwargs=KW)


def test_agent_episodes_picture_marks_each_action():
    """scripts/agent_episodes.py: one row per episode, the goal first; a wrong stop gets a red bar, a turn a blue or
    orange one, and a row without success no green frame."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "agent_episodes", Path(__file__).resolve().parents[1] / "scripts" / "agent_episodes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Turner:     # turns left twice, then stops: a policy with SB3's predict
        def __init__(self):
            self.n = 0

        def predict(self, obs, deterministic=True):
            self.n += 1
            return (1 if self.n % 3 else 0), None

    task = {"excursion": "glance-away", "stop_to_arrive": True, "discrete_actions": ["noop", "turn_left", "turn_right"]}
    rows = mod.episodes(Turner(), "twin", 2, task, max_steps=8, threads=1)
    assert [r["actions"][:3] for r in rows][0] == ["turn_left", "turn_left", "noop"]
    img = mod.picture(rows, 8)
    H = rows[0]["goal"].shape[0]
    assert img.shape[0] == 2 * (H + 9) + 3 and img.dtype == np.uint8
    W = rows[0]["goal"].shape[1]
    x_of = lambda i: 2 + W + 6 + i * (W + 2)     # noqa: E731  (view i's left edge)
    bar = lambda row, i: tuple(img[row * (H + 12) + 3 + H + 1, x_of(i) + W // 2])   # noqa: E731
    assert bar(0, 1) == mod.COLOURS["turn_left"]
    assert not rows[0]["arrived"]     # held-out episode 100,000: its goal is not two turns to the left
    assert bar(0, 3) == mod.STOP_BAD and tuple(img[0, 0]) == (255, 255, 255)
