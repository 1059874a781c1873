"""``camworld eval agents``: train in the generated world, score in the twin (tiny settings)."""

import json

import numpy as np
import pytest

from camworld.agents import benchmark as B
from camworld.motion import DISCRETE_ACTIONS


def test_t_interval_and_transfer_ratio():
    m, h = B.t_interval([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0) and h == pytest.approx(4.303 * 1.0 / np.sqrt(3))
    assert np.isnan(B.t_interval([5.0])[1]) and B.t_interval([5.0])[0] == 5.0
    assert np.isnan(B.t_interval([])[0])
    assert B.transfer_ratio(0.5, 1.0, 0.0) == pytest.approx(0.5)
    assert B.transfer_ratio(0.0, 1.0, 0.0) == 0.0
    assert np.isnan(B.transfer_ratio(0.3, 0.1, 0.2))          # the twin agent does not beat random


def test_env_ids_and_conditions():
    assert B.env_id("twin", "goal-view") == "CamWorld-GoalView-v0"
    assert B.env_id("learned", "goal-view") == B.env_id("learned-recent", "goal-view") == "ContextAsMemory-GoalView-v0"
    args = B.resolve(_args(["agents", "--quick"]))
    assert B.env_kwargs("learned-recent", args)["retrieval"] == "recent"
    assert "retrieval" not in B.env_kwargs("learned", args)      # the default retrieval
    assert "checkpoint" not in B.env_kwargs("twin", args)
    args = B.resolve(_args(["agents", "--quick", "--task-kwargs", "excursion=walk", "min_goal_distance=1.0"]))
    assert B.env_kwargs("twin", args)["min_goal_distance"] == 1.0 and B.env_kwargs("learned", args)["excursion"] == "walk"
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        B.task_kwargs(["oops"])
    with pytest.raises(SystemExit, match="--ppo-kwargs takes KEY=VALUE"):
        B.ppo_kwargs(["oops"])
    assert B.ppo_kwargs(["ent_coef=0.05", "n_epochs=10"]) == {"ent_coef": 0.05, "n_epochs": 10}
    with pytest.raises(SystemExit, match="--n-steps"):
        B.ppo_kwargs(["n_steps=8"])
    with pytest.raises(SystemExit, match="must be a number"):
        B.ppo_kwargs(["ent_coef=lots"])


def _args(argv):
    import argparse

    p = argparse.ArgumentParser()
    B.add_arguments(p)
    return p.parse_args(argv)


def test_bad_settings_are_refused():
    with pytest.raises(SystemExit, match="--budget must be >= 1"):
        B.resolve(_args(["agents", "--quick", "--budget", "0"]))
    with pytest.raises(SystemExit, match="distinct"):
        B.resolve(_args(["agents", "--quick", "--seeds", "1", "1"]))


def test_oracle_beats_random_in_the_twin():
    """The scripted oracle steers to the true goal pose: it must reach it where random does not."""
    args = B.resolve(_args(["agents", "--quick", "--max-episode-steps", "30"]))
    args.frame_size = 32
    oracle = B.score(B.GoalPoseOracle, args, episodes=3)
    rand = B.score(B.random_policy(0), args, episodes=3)
    assert oracle["success_rate"] == 1.0 and oracle["mean_return"] > rand["mean_return"]


def test_quick_benchmark_end_to_end_and_resume(tiny_checkpoint, tmp_path, capsys):
    from camworld.cli import main

    argv = ["eval", "agents", "--quick", "--checkpoint", tiny_checkpoint, "--out", str(tmp_path), "--budget", "16",
            "--num-envs", "2", "--n-steps", "4", "--eval-every", "8", "--max-episode-steps", "6", "--threads", "1",
            "--no-progress"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["rows"]) == {"learned", "learned-recent", "twin", "random", "oracle", "constant"}
    assert 0 <= res["rows"]["constant"]["action"] < 7
    for c in B.CONDITIONS:
        for s in (0, 1):
            assert (tmp_path / "agents" / f"{c}_s{s}.zip").stat().st_size > 0
        assert res["rows"][c]["n"] == 2 and np.isfinite(res["rows"][c]["mean_return"])
    assert set(res["transfer"]) == {"learned", "learned-recent"}
    run = next(r for r in res["runs"] if r["condition"] == "learned")
    assert [p["steps"] for p in run["curve"]] == [8, 16]
    assert {k: run["curve"][-1][k] for k in run["final"]} == run["final"]     # the final score is the last point
    assert res["frame_size"] == 32                                  # the twin rendered at the learned world's size
    md = (tmp_path / "results.md").read_text()
    assert "| learned | ContextAsMemory (default retrieval) |" in md and "Transfer ratio" in md
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    # resume: finished agents are kept as they are (no retraining: same curves, same zip)
    before = (tmp_path / "agents" / "twin_s0.zip").read_bytes()
    assert main(argv + ["--resume"]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "agents" / "twin_s0.zip").read_bytes() == before
    assert [r["curve"] for r in again["runs"]] == [r["curve"] for r in res["runs"]]
    capsys.readouterr()

    # --report: nothing trains; an agent that did not finish is left out, and said so
    (tmp_path / "agents" / "learned-recent_s1.json").unlink()
    assert main(argv + ["--report"]) == 0
    assert "not finished, left out: learned-recent_s1" in capsys.readouterr().out
    rep = json.loads((tmp_path / "results.json").read_text())
    assert rep["rows"]["learned-recent"]["seeds"] == [0] and rep["rows"]["learned"]["seeds"] == [0, 1]
    # --rescore: the saved agents scored again, the same figures (deterministic policies, same episodes)
    assert main(argv + ["--report", "--rescore"]) == 0
    capsys.readouterr()
    again = json.loads((tmp_path / "results.json").read_text())
    for c in ("learned", "twin"):
        assert again["rows"][c]["success_rate"] == rep["rows"][c]["success_rate"]
        assert again["rows"][c]["mean_return"] == pytest.approx(rep["rows"][c]["mean_return"])
    # --own-world: each agent also scored in the world it trained in; the twin agent's own world is the twin
    assert main(argv + ["--report", "--own-world"]) == 0
    capsys.readouterr()
    own = json.loads((tmp_path / "results.json").read_text())
    for c in ("learned", "twin"):
        o = own["rows"][c]["own_world"]
        assert o["n"] == own["rows"][c]["n"] and np.isfinite(o["mean_return"])
    assert own["rows"]["twin"]["own_world"]["mean_return"] == pytest.approx(own["rows"]["twin"]["mean_return"])
    run = next(r for r in own["runs"] if r["condition"] == "learned")
    assert run["own_world"]["episodes"] == run["final"]["episodes"]
    assert "| learned | " in (tmp_path / "results.md").read_text().split("return in its own world")[1]
    # the own-world score is kept with the agent: a later --own-world report reuses it (marked here to tell), a
    # plain report does not show it, and --rescore scores it again
    state = tmp_path / "agents" / "learned_s0.json"
    saved = json.loads(state.read_text())
    assert saved["own_world"]["episodes"] == run["final"]["episodes"]
    state.write_text(json.dumps(dict(saved, own_world=dict(saved["own_world"], mean_return=123.0))))
    assert main(argv + ["--report", "--own-world"]) == 0
    reused = json.loads((tmp_path / "results.json").read_text())
    assert next(r for r in reused["runs"] if r["condition"] == "learned" and r["seed"] == 0)["own_world"][
        "mean_return"] == 123.0
    assert main(argv + ["--report"]) == 0
    assert "own_world" not in json.loads((tmp_path / "results.json").read_text())["rows"]["learned"]
    assert main(argv + ["--report", "--rescore", "--own-world"]) == 0
    assert json.loads(state.read_text())["own_world"]["mean_return"] != 123.0
    saved = json.loads(state.read_text())     # a world scored with other settings is scored again
    state.write_text(json.dumps(dict(saved, own_world=dict(saved["own_world"], mean_return=123.0))))
    assert main(argv + ["--report", "--own-world", "--world-kwargs", "sample_steps=2"]) == 0
    capsys.readouterr()
    rescored = json.loads(state.read_text())
    assert rescored["own_world"]["mean_return"] != 123.0
    assert rescored["own_world_spec"]["env"]["sample_steps"] == 2
    with pytest.raises(SystemExit, match="--rescore goes with --report"):
        B.resolve(_args(["agents", "--quick", "--rescore"]))
    with pytest.raises(SystemExit, match="--own-world goes with --report"):
        B.resolve(_args(["agents", "--quick", "--own-world"]))
    with pytest.raises(SystemExit, match="trains no PPO"):
        B.resolve(_args(["agents", "--quick", "--algo", "dagger", "--ppo-kwargs", "ent_coef=0.05"]))


def test_benchmark_agents_on_world_latents(tiny_checkpoint, tmp_path, capsys):
    """--features world-latent: the agents see the frames through the same world model's VAE."""
    from camworld.agents import LatentGoalHead
    from camworld.cli import main
    from stable_baselines3 import PPO

    argv = ["eval", "agents", "--quick", "--checkpoint", tiny_checkpoint, "--out", str(tmp_path), "--budget", "8",
            "--seeds", "0", "--conditions", "twin", "--num-envs", "2", "--n-steps", "4", "--eval-every", "8",
            "--max-episode-steps", "4", "--threads", "1", "--no-progress", "--features", "world-latent"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["features"] == "world-latent" and "PPO on world-latent features" in (tmp_path / "results.md").read_text()
    agent = PPO.load(str(tmp_path / "agents" / "twin_s0.zip"), device="cpu")
    assert isinstance(agent.policy.features_extractor, LatentGoalHead)
    capsys.readouterr()


def test_benchmark_correlation_features_and_ppo_settings(tmp_path, capsys):
    """--features correlation and --ppo-kwargs reach the SB3 agent, and the report says which were used."""
    from stable_baselines3 import PPO

    from camworld.agents import GoalCorrelationExtractor
    from camworld.cli import main

    argv = ["eval", "agents", "--quick", "--out", str(tmp_path), "--budget", "8", "--seeds", "0", "--conditions",
            "twin", "--num-envs", "2", "--n-steps", "4", "--eval-every", "8", "--max-episode-steps", "4",
            "--threads", "1", "--no-progress", "--features", "correlation", "--task-kwargs", "excursion=glance",
            "--ppo-kwargs", "ent_coef=0.05", "n_epochs=2"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["ppo_kwargs"] == {"ent_coef": 0.05, "n_epochs": 2} and res["features"] == "correlation"
    md = (tmp_path / "results.md").read_text()
    assert "Task settings: excursion=glance." in md and "PPO settings: ent_coef=0.05, n_epochs=2." in md
    agent = PPO.load(str(tmp_path / "agents" / "twin_s0.zip"), device="cpu")
    assert isinstance(agent.policy.features_extractor, GoalCorrelationExtractor)
    assert agent.ent_coef == 0.05 and agent.n_epochs == 2
    assert res["blur"] == 0.0 and agent.policy.features_extractor.blur.sigma == 0.0
    with pytest.raises(SystemExit, match="trained with --blur 0"):      # a resume keeps what the agents saw
        main(argv + ["--blur", "1.5", "--resume", "--budget", "16"])
    with pytest.raises(SystemExit, match="--features correlation"):
        main(["eval", "agents", "--quick", "--blur", "1.0", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="--blur"):
        main(["eval", "agents", "--quick", "--features", "correlation", "--blur", "-1", "--out", str(tmp_path / "x")])
    capsys.readouterr()


def test_benchmark_dagger_end_to_end_and_resume(tiny_checkpoint, tmp_path, capsys):
    """--algo dagger: the same protocol and report; policies and datasets saved; resume keeps finished agents."""
    from camworld.cli import main

    argv = ["eval", "agents", "--quick", "--checkpoint", tiny_checkpoint, "--out", str(tmp_path), "--budget", "16",
            "--seeds", "0", "--conditions", "twin", "learned-recent", "--num-envs", "2", "--n-steps", "4",
            "--eval-every", "8", "--max-episode-steps", "6", "--threads", "1", "--no-progress", "--algo", "dagger",
            "--task-kwargs", "excursion=rotate", "stop_to_arrive=true"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["algo"] == "dagger" and res["features"] == "world-latent"
    assert "DAgger" in (tmp_path / "results.md").read_text()
    for c in ("twin", "learned-recent"):
        run = next(r for r in res["runs"] if r["condition"] == c)
        assert [p["steps"] for p in run["curve"]] == [8, 16]
        assert (tmp_path / "agents" / f"{c}_s0_policy.safetensors").stat().st_size > 0
        with np.load(tmp_path / "agents" / f"{c}_s0_data.npz") as z:
            assert len(z["act"]) == 16
    before = (tmp_path / "agents" / "twin_s0_policy.safetensors").read_bytes()
    assert main(argv + ["--resume"]) == 0
    assert (tmp_path / "agents" / "twin_s0_policy.safetensors").read_bytes() == before
    capsys.readouterr()


def test_benchmark_with_a_reduced_action_set(tiny_checkpoint, tmp_path, capsys):
    """--task-kwargs discrete_actions=[...]: PPO and DAgger agents get Discrete(3), DAgger's labels are the oracle's
    actions in that numbering, and the constant baselines range over the subset, named in the report."""
    from stable_baselines3 import PPO

    from camworld.agents.imitation import DaggerAgent
    from camworld.cli import main

    subset = 'discrete_actions=["noop", "turn_left", "turn_right"]'
    common = ["eval", "agents", "--quick", "--checkpoint", tiny_checkpoint, "--budget", "8", "--seeds", "0",
              "--conditions", "twin", "--num-envs", "2", "--n-steps", "4", "--eval-every", "8",
              "--max-episode-steps", "6", "--threads", "1", "--no-progress", "--features", "correlation",
              "--task-kwargs", "excursion=glance-away", "stop_to_arrive=true", subset]
    assert main(common + ["--out", str(tmp_path / "ppo")]) == 0
    agent = PPO.load(str(tmp_path / "ppo" / "agents" / "twin_s0.zip"), device="cpu")
    assert agent.action_space.n == 3
    res = json.loads((tmp_path / "ppo" / "results.json").read_text())
    const = res["rows"]["constant"]
    assert const["action"] in (0, 1, 2) and const["action_name"] == ("noop", "turn_left", "turn_right")[const["action"]]
    md = (tmp_path / "ppo" / "results.md").read_text()
    assert f"constant (action {const['action']}, {const['action_name']})" in md
    assert main(common + ["--out", str(tmp_path / "dagger"), "--algo", "dagger"]) == 0
    with np.load(tmp_path / "dagger" / "agents" / "twin_s0_data.npz") as z:
        acts = z["act"]
    assert set(acts.tolist()) <= {0, 1, 2} and len(set(acts.tolist())) > 1   # turns (1, 2) and stops (0)
    agent = DaggerAgent.load(tmp_path / "dagger" / "agents" / "twin_s0_policy.safetensors", None)
    assert agent.meta["n_actions"] == 3
    assert B.action_names(type("A", (), {"task_kwargs": None})()) == tuple(n[0] for n in DISCRETE_ACTIONS)
    capsys.readouterr()


def test_resume_continues_an_unfinished_agent(tiny_checkpoint, tmp_path):
    """Stopped after its first chunk (as a crash would leave it), an agent resumes from its zip and
    finishes the budget: the curve keeps the first point and adds the rest."""
    args = B.resolve(_args(["agents", "--quick", "--checkpoint", tiny_checkpoint, "--out", str(tmp_path),
                            "--budget", "8", "--num-envs", "2", "--n-steps", "4", "--eval-every", "8",
                            "--max-episode-steps", "4", "--conditions", "twin", "--seeds", "0", "--no-progress"]))
    args.frame_size = 32
    from tqdm import tqdm

    bar = tqdm(disable=True)
    (tmp_path / "agents").mkdir(parents=True)
    first = B.train_one("twin", 0, args, tmp_path, bar)
    assert first["steps"] == 8 and first["final"] is not None
    args.budget, args.resume = 16, True
    second = B.train_one("twin", 0, args, tmp_path, bar)
    assert second["steps"] == 16 and [p["steps"] for p in second["curve"]] == [8, 16]
    assert second["curve"][0] == first["curve"][0]


def test_goal_view_with_min_goal_distance_cannot_be_solved_by_turning():
    """With walk tours and goals >= 1 m away, the goal needs a move: turning in place never arrives, the oracle does."""
    import gymnasium as gym

    import camworld  # noqa: F401
    from camworld.agents.training import evaluate

    kw = dict(excursion="walk", min_goal_distance=1.0, max_episode_steps=25)
    env = gym.make("CamWorld-GoalView-v0", **kw)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert np.hypot(*(info["goal_pose"][:2] - info["pose"][:2])) >= 1.0
    env.close()
    turn = evaluate(B.constant_policy(3), "CamWorld-GoalView-v0", episodes=4, seed=B.EVAL_SEED, env_kwargs=kw)
    oracle = evaluate(B.GoalPoseOracle, "CamWorld-GoalView-v0", episodes=4, seed=B.EVAL_SEED, env_kwargs=kw)
    assert turn["success_rate"] == 0.0 and oracle["success_rate"] > 0.5
    with pytest.raises(ValueError, match="min_goal_distance"):
        gym.make("CamWorld-GoalView-v0", min_goal_distance=-1.0)


def test_goal_view_stop_to_arrive_needs_the_stop_action_at_the_goal():
    """stop_to_arrive: passing through the goal pose is not arriving; stopping there is (+10, ends the episode),
    stopping elsewhere ends it with -5. So turning forever never succeeds and the oracle (which stops) does."""
    import gymnasium as gym

    import camworld  # noqa: F401
    from camworld.agents.training import evaluate

    kw = dict(excursion="rotate", stop_to_arrive=True, max_episode_steps=40, frame_size=32)
    env = gym.make("CamWorld-GoalView-v0", **kw)
    _, info = env.reset(seed=3)
    _, reward, terminated, _, info = env.step(0)                         # stop at once, away from the goal
    assert terminated and not info["arrived"] and not info["at_goal"] and reward == pytest.approx(-5.0)
    follow = B.GoalPoseOracle(env.unwrapped)
    obs, info = env.reset(seed=4)
    follow.reset(obs, info)
    for _ in range(40):                                                  # the oracle walks to the goal, then stops
        a = follow.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(a)
        if info["at_goal"] and not info["arrived"]:
            assert a != 0 and not terminated                             # there, but it has not said so yet
        if terminated or truncated:
            break
    assert terminated and a == 0 and info["arrived"] and reward > 9.0
    env.close()
    turn = evaluate(B.constant_policy(3), "CamWorld-GoalView-v0", episodes=3, seed=B.EVAL_SEED, env_kwargs=kw)
    oracle = evaluate(B.GoalPoseOracle, "CamWorld-GoalView-v0", episodes=3, seed=B.EVAL_SEED, env_kwargs=kw)
    assert turn["success_rate"] == 0.0 and oracle["success_rate"] == 1.0
    with pytest.raises(ValueError, match="stop_to_arrive"):
        gym.make("CamWorld-GoalView-v0", stop_to_arrive="yes")
    # wrong_stop_ends=False: a wrong stop costs the penalty and the episode goes on; the right one still ends it
    env = gym.make("CamWorld-GoalView-v0", **kw, wrong_stop_ends=False, wrong_stop_penalty=1.0)
    _, info = env.reset(seed=3)
    _, reward, terminated, _, info = env.step(0)
    assert not terminated and not info["arrived"] and reward == pytest.approx(-1.0)
    env.close()
    oracle = evaluate(B.GoalPoseOracle, "CamWorld-GoalView-v0", episodes=3, seed=B.EVAL_SEED,
                      env_kwargs=dict(kw, wrong_stop_ends=False))
    assert oracle["success_rate"] == 1.0
    with pytest.raises(ValueError, match="wrong_stop_ends"):
        gym.make("CamWorld-GoalView-v0", wrong_stop_ends="no")
    # stop_credit: a wrong stop near the goal earns part of the bonus, falling linearly with the pose error
    env = gym.make("CamWorld-GoalView-v0", **kw, stop_credit=4.0, wrong_stop_penalty=1.0)
    _, info = env.reset(seed=3)
    err = info["goal_distance"] + np.deg2rad(info["goal_yaw_error_deg"])
    _, reward, terminated, _, info = env.step(0)
    assert terminated and not info["arrived"] and reward == pytest.approx(10.0 * max(0.0, 1 - err / 4.0) - 1.0)
    env.close()
    with pytest.raises(ValueError, match="stop_credit"):
        gym.make("CamWorld-GoalView-v0", stop_credit=-1.0)


def test_goal_view_glance_goal_is_a_side_view_that_only_its_own_turn_reaches():
    """excursion="glance": the tour looks 20-40 degrees aside and back, the goal is that side view at the start
    position (partly in sight); within 8 steps turning left reaches exactly the goals on the left, turning right
    the others, and the oracle all of them. So which way to turn is what the frames must tell."""
    import gymnasium as gym

    import camworld  # noqa: F401
    from camworld.agents.training import evaluate
    from camworld.geometry import wrap_angle

    kw = dict(excursion="glance", max_episode_steps=8, frame_size=32)
    env = gym.make("CamWorld-GoalView-v0", **kw)
    sides = []
    for seed in range(B.EVAL_SEED, B.EVAL_SEED + 6):
        obs, info = env.reset(seed=seed)
        yaw = np.rad2deg(wrap_angle(info["goal_pose"][2] - info["pose"][2]))
        assert 20.0 - 1e-6 <= abs(yaw) <= 40.0 + 1e-6
        assert np.allclose(info["goal_pose"][:2], info["pose"][:2]) and not info["at_goal"]
        assert np.allclose(info["pose"], env.unwrapped.start_pose)        # the tour came back to the start
        sides.append(yaw > 0)
    env.close()
    assert 0 < sum(sides) < len(sides)                                   # both sides occur
    left = evaluate(B.constant_policy(3), "CamWorld-GoalView-v0", episodes=6, seed=B.EVAL_SEED, env_kwargs=kw)
    right = evaluate(B.constant_policy(4), "CamWorld-GoalView-v0", episodes=6, seed=B.EVAL_SEED, env_kwargs=kw)
    oracle = evaluate(B.GoalPoseOracle, "CamWorld-GoalView-v0", episodes=6, seed=B.EVAL_SEED, env_kwargs=kw)
    assert left["success_rate"] == pytest.approx(np.mean(sides))        # yaw > 0 is a left turn
    assert right["success_rate"] == pytest.approx(1 - np.mean(sides))
    # evaluate splits success by the goal's side: a constant turn succeeds on its own side only
    assert (left["success_goal_left"], left["success_goal_right"]) == (1.0, 0.0)
    assert (right["success_goal_left"], right["success_goal_right"]) == (0.0, 1.0)
    assert oracle["success_goal_left"] == oracle["success_goal_right"] == 1.0
    assert oracle["success_rate"] == 1.0
    with pytest.raises(ValueError, match="glance"):
        gym.make("CamWorld-Return-v0", excursion="glance")             # only goal-view has the glance tour


def test_goal_view_glance_away_goal_is_the_first_side_view_and_the_tour_ends_looking_the_other_way():
    """excursion="glance-away": the same side-view goal as "glance", but the tour then looks 60-100 degrees the
    other way and back, so the last frames the world generated (what a `recent` window holds) face away from it."""
    import gymnasium as gym

    import camworld  # noqa: F401
    from camworld.agents.training import evaluate
    from camworld.geometry import wrap_angle

    kw = dict(excursion="glance-away", max_episode_steps=8, frame_size=32)
    env = gym.make("CamWorld-GoalView-v0", **kw)
    for seed in range(B.EVAL_SEED, B.EVAL_SEED + 4):
        obs, info = env.reset(seed=seed)
        start = env.unwrapped.start_pose
        yaw = np.rad2deg(wrap_angle(info["goal_pose"][2] - start[2]))
        assert 20.0 - 1e-6 <= abs(yaw) <= 40.0 + 1e-6 and np.allclose(info["goal_pose"][:2], start[:2])
        assert np.allclose(info["pose"], start)                                   # back at the start
        tour = np.rad2deg(wrap_angle(np.asarray(info["poses"])[:, 2] - start[2]))
        assert tour.min() < -59 if yaw > 0 else tour.max() > 59                  # looked 60+ degrees the other way
        assert (np.sign(tour[-8:]) != np.sign(yaw)).all()                       # the last 8 frames face away
        assert len(tour) >= 8 + 8                                                 # more than a k = 8 window
    env.close()
    oracle = evaluate(B.GoalPoseOracle, "CamWorld-GoalView-v0", episodes=4, seed=B.EVAL_SEED,
                      env_kwargs=dict(kw, stop_to_arrive=True))
    assert oracle["success_rate"] == 1.0


def test_goal_cue_end_to_end_and_auc(tiny_checkpoint, tmp_path, capsys):
    """camworld eval goal-cue: the oracle arrives in every world, every view is counted at or away from the goal,
    the twin's own goal frame is told from other views, and the table and JSON are written; auc is Mann-Whitney's."""
    from camworld.agents.cue import auc
    from camworld.cli import main

    assert auc([3.0, 4.0], [1.0, 2.0]) == 1.0 and auc([1.0], [2.0]) == 0.0 and auc([2.0], [2.0]) == 0.5
    assert auc([float("inf")], [30.0]) == 1.0 and np.isnan(auc([], [1.0]))
    argv = ["eval", "goal-cue", "--checkpoint", tiny_checkpoint, "--episodes", "2", "--max-episode-steps", "6",
            "--world-kwargs", "sample_steps=2",
            "--task-kwargs", "excursion=glance-away", "stop_to_arrive=true", "--threads", "1", "--out", str(tmp_path / "cue")]
    assert main(argv) == 0
    tmp_path = tmp_path / "cue"                                      # made if missing
    rows = json.loads((tmp_path / "goal_cue.json").read_text())
    assert [r["condition"] for r in rows] == ["learned", "learned-recent", "twin"]
    for r in rows:
        assert r["oracle_success"] == 1.0 and r["views_at_goal"] >= 2 * 2 and r["views_away"] >= 2
        assert 0.0 <= r["auc"] <= 1.0
    assert rows[2]["psnr_at_goal"] > rows[2]["psnr_away"]           # in the real world the goal's place looks like it
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "goal_cue.png"))             # 2 episodes x (3 worlds x 3 frames), 2x
    size = B.learned_frame_size(tiny_checkpoint)
    assert png.shape == (2 * (2 * size + 2), 2 * (9 * size + 6 + 2 * 6), 3)
    md = (tmp_path / "goal_cue.md").read_text()
    assert "excursion=glance-away stop_to_arrive=true" in md and "| CamWorld twin | 1.00 |" in md
    assert "learned-world settings: sample_steps=2" in md
    with pytest.raises(SystemExit, match="episodes"):
        main(argv[:5] + ["0"])
    capsys.readouterr()


def test_world_kwargs_reach_the_learned_worlds_only():
    """--world-kwargs: settings of the learned world (its sampler) go to both learned conditions, never to the
    twin (which would refuse them); bad pairs are a clear error."""
    args = B.resolve(_args(["agents", "--quick", "--world-kwargs", "warp_fill=mirror", "sample_steps=8",
                            "--task-kwargs", "excursion=glance-away"]))
    for c in ("learned", "learned-recent"):
        kw = B.env_kwargs(c, args)
        assert kw["warp_fill"] == "mirror" and kw["sample_steps"] == 8 and kw["excursion"] == "glance-away"
    assert B.env_kwargs("learned-recent", args)["retrieval"] == "recent"
    twin = B.env_kwargs("twin", args)
    assert "warp_fill" not in twin and "sample_steps" not in twin and twin["excursion"] == "glance-away"
    with pytest.raises(SystemExit, match="--world-kwargs takes KEY=VALUE"):
        B.env_kwargs("learned", B.resolve(_args(["agents", "--quick", "--world-kwargs", "mirror"])))
