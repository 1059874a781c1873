"""``camworld eval agents``: agents trained inside the generated world, scored in the real one.

    camworld eval agents --quick                       # CI: every piece, tiny budget (about a minute)
    camworld eval agents                               # the full setting (wall time in BENCHMARKS.md)
    camworld eval agents --task goal-view --budget 12000 --seeds 0 1 2 --resume

For one task, the same algorithm (PPO, ``camworld.agents.training.PPO_DEFAULTS``; or with ``--algo dagger``
imitation of the goal-pose oracle on world latents, or on pixels with ``--features correlation``,
``camworld.agents.imitation``), the same seeds and
the same env-step budget train three agents:

- ``learned``: inside ``ContextAsMemory-<Task>-v0``, the learned world with the default retrieval;
- ``learned-recent``: the same world with ``retrieval="recent"`` (a world without long-term memory);
- ``twin``: inside ``CamWorld-<Task>-v0``, the ground-truth sim (the upper bound).

Every agent, a random policy and the task's scripted oracle (it steers with the true goal pose) are
scored in the twin on held-out scenes (fixed evaluation seeds, disjoint from the training seeds):
mean return, success rate, and a 95% t-interval over training seeds. The transfer ratio is
(learned-world agent - random) / (twin agent - random). During training, each agent is scored in the
twin every ``--eval-every`` env steps: the learning curves.

Writes ``OUT/results.md``, ``results.json``, ``curves.png`` and one SB3 zip per agent
(``OUT/agents/<condition>_s<seed>.zip``). ``--resume`` continues from what ``OUT`` holds: finished
agents are kept, an unfinished one restarts from its last saved chunk (the policy and the optimiser's
state are restored; the rollout in flight when it stopped is lost, so a resumed run is not bitwise
the uninterrupted one).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from camworld import threads
from camworld.agents.training import FEATURES
from camworld.files import atomic_write, write_text

CONDITIONS = ("learned", "learned-recent", "twin")
TASK_IDS = {"goal-view": "GoalView", "return": "Return", "explore": "Explore"}
EVAL_SEED = 100_000          # evaluation episodes use reset seeds EVAL_SEED + i; training envs use the run's seed
# Student t quantiles (two-sided 95%) for n - 1 degrees of freedom; normal beyond the table
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}

QUICK = dict(budget=128, seeds=[0, 1], num_envs=4, n_steps=16, episodes=2, eval_every=64, eval_episodes=1,
             max_episode_steps=12)
FULL = dict(budget=6_144, seeds=[0, 1, 2], num_envs=16, n_steps=64, episodes=24, eval_every=1_024,
            eval_episodes=8, max_episode_steps=None)


def env_id(condition: str, task: str) -> str:
    name = TASK_IDS[task]
    return f"CamWorld-{name}-v0" if condition == "twin" else f"ContextAsMemory-{name}-v0"


def env_kwargs(condition: str, args) -> dict:
    kw = {}
    if condition == "learned-recent":
        kw["retrieval"] = "recent"
    if condition != "twin":
        if args.checkpoint:
            kw["checkpoint"] = args.checkpoint
        kw["device"] = args.device
    elif getattr(args, "frame_size", None):
        kw["frame_size"] = args.frame_size       # the twin renders at the learned world's size
    if args.max_episode_steps:
        kw["max_episode_steps"] = args.max_episode_steps
    kw.update(task_kwargs(getattr(args, "task_kwargs", None)))
    if condition != "twin":   # the learned world's own settings (its sampler): the twin has none
        kw.update(world_kwargs(getattr(args, "world_kwargs", None)))
    return kw


def task_kwargs(pairs) -> dict:
    """['excursion=walk', 'min_goal_distance=1.0'] -> {'excursion': 'walk', 'min_goal_distance': 1.0}."""
    return key_values(pairs, "--task-kwargs")


def world_kwargs(pairs) -> dict:
    """--world-kwargs: the learned worlds' own settings, e.g. ['warp_fill=mirror'] -> {'warp_fill': 'mirror'}."""
    return key_values(pairs, "--world-kwargs")


def key_values(pairs, flag: str) -> dict:
    """KEY=VALUE strings -> a dict (values parsed as JSON where they are JSON, else kept as strings); a bad pair
    is an error that names ``flag``."""
    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"camworld eval agents: {flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def ppo_kwargs(pairs) -> dict:
    """['ent_coef=0.05', 'n_epochs=10'] -> PPO keyword arguments over ``PPO_DEFAULTS`` (numbers only; n_steps has
    its own option)."""
    out = key_values(pairs, "--ppo-kwargs")
    for key, value in out.items():
        if key == "n_steps":
            raise SystemExit("camworld eval agents: give n_steps as --n-steps, not in --ppo-kwargs")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SystemExit(f"camworld eval agents: --ppo-kwargs {key} must be a number, got {value!r}")
    return out


def learned_frame_size(checkpoint) -> int:
    """The frame size of a learned-world checkpoint (what the twin must render for the same agents)."""
    from camworld.model.world_model import read_checkpoint

    return int(read_checkpoint(checkpoint)[0].frame_size)


def t_interval(values) -> tuple:
    """Mean and half-width of a two-sided 95% Student-t interval (nan for fewer than 2 values)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) < 2:
        return float(v.mean()), float("nan")
    t = _T95.get(len(v) - 1, 1.96)
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(len(v)))


def transfer_ratio(agent: float, twin: float, random: float) -> float:
    """(agent - random) / (twin - random); nan when the twin agent does not beat random."""
    gap = twin - random
    return float((agent - random) / gap) if gap > 1e-9 else float("nan")


# ---------------------------------------------------------------- policies scored in the twin


class GoalPoseOracle:
    """Steers to ``info["goal_pose"]`` with the env's own actions: what a perfect vision policy could do."""

    def __init__(self, env):
        from camworld.agents.scripted import WaypointFollower

        self._follow = WaypointFollower(env)

    def reset(self, obs, info):
        self._follow.set_waypoints(np.asarray(info["goal_pose"], np.float64)[None])

    def act(self, obs, info):
        return self._follow.act(obs, info)


class RandomPolicy:
    """Uniform random actions from the env's action space (seeded; ``random_policy(seed)`` binds a seed)."""

    SEED = 0

    def __init__(self, env, seed: int | None = None):
        self.space = env.action_space
        self.space.seed(int(self.SEED if seed is None else seed))

    def reset(self, obs, info):
        pass

    def act(self, obs, info):
        return self.space.sample()


def random_policy(seed: int) -> type:
    """A ``RandomPolicy`` class with its seed bound (``evaluate`` builds a class per env)."""
    return type(f"RandomPolicy_s{seed}", (RandomPolicy,), {"SEED": int(seed)})


class ConstantPolicy:
    """The same discrete action at every step (``constant_policy(a)`` binds it): the cheapest policy that needs
    neither vision nor memory. If it scores like a trained agent, the task can be solved blind."""

    ACTION = 0

    def __init__(self, env):
        pass

    def reset(self, obs, info):
        pass

    def act(self, obs, info):
        return self.ACTION


def constant_policy(action: int) -> type:
    return type(f"ConstantPolicy_a{action}", (ConstantPolicy,), {"ACTION": int(action)})


def action_names(args) -> tuple:
    """The discrete actions of the benchmark's envs, in their order: all seven, or ``--task-kwargs
    discrete_actions=[...]``."""
    from camworld.motion import DISCRETE_NAMES, discrete_subset

    subset = task_kwargs(getattr(args, "task_kwargs", None)).get("discrete_actions")
    return DISCRETE_NAMES if subset is None else tuple(DISCRETE_NAMES[i] for i in discrete_subset(subset))


def oracle_for(task: str):
    """The task's scripted oracle class, or None."""
    if task in ("goal-view", "return"):
        return GoalPoseOracle
    return None


def score(agent, args, episodes: int, seed: int = EVAL_SEED, condition: str = "twin") -> dict:
    """An agent's mean return and success rate on ``episodes`` held-out episodes of the twin (or of the world of
    ``condition``: where a learned-world agent trained, to tell what it learned from what carries over)."""
    from camworld.agents.training import evaluate

    lat = _latents(args) if _features(args) == "world-latent" and hasattr(agent, "predict") else None
    return evaluate(agent, env_id(condition, args.task), episodes=episodes, seed=seed,
                    env_kwargs=env_kwargs(condition, args), obs_transform=lat)


def _features(args) -> str:
    """What the agents see; DAgger sees world latents unless asked for the correlation head on pixels."""
    features = getattr(args, "features", "cnn")
    if _algo(args) == "dagger":
        return "correlation" if features == "correlation" else "world-latent"
    return features


def _algo(args) -> str:
    return getattr(args, "algo", "ppo")


_LATENTS = {}


def _dagger_latents(args):
    """What a DAgger policy's observations come from: the world model's encoder, or None (the frames)."""
    return _latents(args) if _features(args) == "world-latent" else None


def _latents(args):
    """The benchmark's world model's encoder (``--checkpoint``), one per checkpoint per process."""
    from camworld.agents.latents import WorldLatents

    key = args.checkpoint
    if key not in _LATENTS:
        _LATENTS[key] = WorldLatents(key)
    return _LATENTS[key]


# ---------------------------------------------------------------- one training run (resumable)


class _Progress:
    """SB3 callback: a tqdm bar over all runs' env steps."""

    def __new__(cls, bar):
        from stable_baselines3.common.callbacks import BaseCallback

        class Callback(BaseCallback):
            def _on_step(self) -> bool:
                bar.update(self.training_env.num_envs)
                return True

        return Callback()


def _state_path(out: Path, condition: str, seed: int) -> Path:
    return out / "agents" / f"{condition}_s{seed}.json"


def _save_state(path: Path, state: dict):
    write_text(path, json.dumps(state, indent=2))


def train_one(condition: str, seed: int, args, out: Path, bar) -> dict:
    """Train (or resume) one agent; score it in the twin every ``eval_every`` steps and at the end."""
    if _algo(args) == "dagger":
        return train_one_dagger(condition, seed, args, out, bar)
    from stable_baselines3 import PPO

    from camworld.agents.training import PPO_DEFAULTS, policy_for
    from camworld.envs import make_sb3_vec_env

    spath = _state_path(out, condition, seed)
    zpath = spath.with_suffix(".zip")
    state = {"condition": condition, "seed": seed, "env_id": env_id(condition, args.task), "steps": 0,
             "curve": [], "train_seconds": 0.0, "final": None}
    if args.resume and spath.exists() and zpath.exists():
        state = json.loads(spath.read_text())
        if state.get("final") is not None and state["steps"] >= args.budget:
            bar.update(args.budget)
            return state
    bar.update(state["steps"])
    venv = make_sb3_vec_env(env_id(condition, args.task), num_envs=args.num_envs, seed=seed,
                            **env_kwargs(condition, args))
    if _features(args) == "world-latent":
        from camworld.agents.latents import LatentVecEnv

        venv = LatentVecEnv(venv, _latents(args))
    try:
        if state["steps"] > 0:
            model = PPO.load(str(zpath), env=venv, device="cpu")
            _same_blur(getattr(getattr(model.policy.features_extractor, "blur", None), "sigma", 0.0), args, zpath)
        else:
            policy, policy_kwargs = policy_for(venv.observation_space, features=_features(args),
                                               blur=args.blur)
            kw = dict(PPO_DEFAULTS, n_steps=args.n_steps, **ppo_kwargs(getattr(args, "ppo_kwargs", None)))
            kw["batch_size"] = min(kw["batch_size"], kw["n_steps"] * args.num_envs)
            model = PPO(policy, venv, policy_kwargs=policy_kwargs, seed=seed, verbose=0, device="cpu", **kw)
        rollout = args.n_steps * args.num_envs
        while state["steps"] < args.budget:
            chunk = min(max(args.eval_every, rollout), args.budget - state["steps"])
            t0 = time.perf_counter()
            model.learn(chunk, reset_num_timesteps=False, callback=_Progress(bar))
            state["train_seconds"] += time.perf_counter() - t0
            state["steps"] = int(model.num_timesteps)
            atomic_write(zpath, lambda tmp: model.save(str(tmp)))
            last = state["steps"] >= args.budget
            res = score(model, args, args.episodes if last else args.eval_episodes)
            state["curve"].append({"steps": state["steps"], **res})
            if last:
                state["final"] = res
            _save_state(spath, state)
    finally:
        venv.close()
    return state


def _same_blur(had: float, args, path: Path):
    """--resume: an agent continues only with the input blur it was trained with."""
    if float(had) != args.blur:
        raise SystemExit(f"camworld eval agents --resume: {path} was trained with --blur {float(had):g}, not "
                         f"{args.blur:g}; use another --out")


def train_one_dagger(condition: str, seed: int, args, out: Path, bar) -> dict:
    """The same protocol with DAgger on world latents (``camworld.agents.imitation``): rounds of
    ``n_steps`` steps per env, the policy refit after each; the policy and the aggregated dataset are saved
    at each curve point, and a resumed agent continues from the last one (its episodes start afresh)."""
    from camworld.agents.imitation import DaggerAgent

    spath = _state_path(out, condition, seed)
    ppath, dpath = spath.with_name(spath.stem + "_policy.safetensors"), spath.with_name(spath.stem + "_data.npz")
    state = {"condition": condition, "seed": seed, "env_id": env_id(condition, args.task), "steps": 0,
             "curve": [], "train_seconds": 0.0, "final": None, "algo": "dagger"}
    lat = _dagger_latents(args)
    agent = data = None
    if args.resume and spath.exists() and ppath.exists() and dpath.exists():
        state = json.loads(spath.read_text())
        if state.get("final") is not None and state["steps"] >= args.budget:
            bar.update(args.budget)
            return state
        agent = DaggerAgent.load(ppath, lat)
        _same_blur(agent.meta.get("blur", 0.0), args, ppath)
        with np.load(dpath) as z:
            data = {"obs": {k[4:]: z[k] for k in z.files if k.startswith("obs_")}, "act": z["act"]}
    bar.update(state["steps"])
    per_round = args.n_steps * args.num_envs
    total_rounds = max(1, args.budget // per_round)
    done = state["steps"] // per_round
    while done < total_rounds:
        chunk = min(max(1, args.eval_every // per_round), total_rounds - done)
        t0 = time.perf_counter()
        agent, data = DaggerAgent.train(env_id(condition, args.task), lat, rounds=chunk, round_steps=args.n_steps,
                                        num_envs=args.num_envs, seed=seed, env_kwargs=env_kwargs(condition, args),
                                        agent=agent, data=data, start_round=done, callback=bar.update,
                                        blur=args.blur)
        state["train_seconds"] += time.perf_counter() - t0
        done += chunk
        state["steps"] = done * per_round
        agent.save(ppath)
        atomic_write(dpath, lambda tmp: np.savez(tmp, act=data["act"],
                                                 **{f"obs_{k}": v for k, v in data["obs"].items()}))
        last = done >= total_rounds
        res = score(agent, args, args.episodes if last else args.eval_episodes)
        state["curve"].append({"steps": state["steps"], **res})
        if last:
            state["final"] = res
        _save_state(spath, state)
    return state


# ---------------------------------------------------------------- the benchmark


def run_benchmark(args) -> dict:
    from tqdm import tqdm

    out = Path(args.out)
    (out / "agents").mkdir(parents=True, exist_ok=True)
    args.frame_size = learned_frame_size(args.checkpoint)
    t0 = time.perf_counter()
    runs = [(c, s) for s in args.seeds for c in args.conditions]   # seed by seed: a partial run has paired rows
    bar = tqdm(total=args.budget * len(runs), desc="eval agents (env steps)", unit="step",
               disable=not args.progress)
    if args.report:   # only what finished: agents whose state file holds a final score at this budget
        states, missing = [], []
        for c, s in runs:
            path = _state_path(out, c, s)
            st = json.loads(path.read_text()) if path.exists() else None
            if st is not None and st.get("final") is not None and st["steps"] >= args.budget:
                states.append(st)
            else:
                missing.append(f"{c}_s{s}")
        if not states:
            raise SystemExit(f"camworld eval agents --report: no finished agent in {out / 'agents'}")
        if missing:
            print(f"--report: not finished, left out: {', '.join(missing)}")
        rescore, own = getattr(args, "rescore", False), getattr(args, "own_world", False)
        for st in states:   # an own-world score an earlier --report saved: reused only for the same scoring
            if rescore or not own or st.pop("own_world_spec", None) != _own_world_spec(st, args):
                st.pop("own_world", None)
        for st in tqdm(states if rescore or own else [], desc="scoring saved agents", disable=not args.progress):
            if own and not rescore and "own_world" in st:
                continue
            agent = _load_agent(out, st, args)   # once, for both scores
            if rescore:   # the saved agents scored again with this version's evaluation
                st["final"] = score(agent, args, args.episodes)
            if own:       # and in the world each trained in (the twin's: its final score)
                st["own_world"] = (st["final"] if st["condition"] == "twin" else
                                   score(agent, args, args.episodes, condition=st["condition"]))
                path = _state_path(out, st["condition"], st["seed"])   # kept with the agent for later reports
                path.write_text(json.dumps(dict(json.loads(path.read_text()), own_world=st["own_world"],
                                                own_world_spec=_own_world_spec(st, args)), indent=2))
        args.conditions = [c for c in args.conditions if any(st["condition"] == c for st in states)]
    else:
        states = [train_one(c, s, args, out, bar) for c, s in runs]
    bar.close()
    seeds = sorted({st["seed"] for st in states})
    baselines = {"random": [score(random_policy(s), args, args.episodes) for s in seeds]}
    oracle = oracle_for(args.task)
    if oracle is not None:
        baselines["oracle"] = [score(oracle, args, args.episodes)]
    # the best single discrete action, repeated: a task whose agents score no better than this is solved blind
    names = action_names(args)
    consts = [(a, score(constant_policy(a), args, args.episodes)) for a in range(len(names))]
    best_a, best = max(consts, key=lambda c: (c[1]["success_rate"], c[1]["mean_return"]))
    baselines["constant"] = [dict(best, action=best_a, action_name=names[best_a])]
    res = summarise(args, states, baselines)
    res["seconds"] = time.perf_counter() - t0
    write_report(res, out)
    return res


def _own_world_spec(state: dict, args) -> dict:
    """What an own-world score depends on besides the agent (as JSON reads it back): its episodes and its env."""
    return json.loads(json.dumps({"episodes": args.episodes, "env": env_kwargs(state["condition"], args)}))


def _load_agent(out: Path, state: dict, args):
    """A finished agent of ``out`` as saved: an SB3 zip (PPO) or a DAgger policy (safetensors + JSON)."""
    spath = _state_path(out, state["condition"], state["seed"])
    if state.get("algo") == "dagger":
        return load_agent_file(spath.with_name(spath.stem + "_policy.safetensors"), _dagger_latents(args))
    return load_agent_file(spath.with_suffix(".zip"))


def load_agent_file(path, latents=None):
    """One saved agent: an SB3 zip (PPO) or a DAgger policy (``*_policy.safetensors`` beside its JSON; ``latents``:
    the world's encoder, which an agent on world latents needs)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved agent at {path}")
    if path.suffix == ".zip":
        from stable_baselines3 import PPO

        return PPO.load(str(path), device="cpu")
    from camworld.agents.imitation import DaggerAgent

    if latents is None and json.loads(path.with_suffix(".json").read_text()).get("features") == "world-latent":
        raise ValueError(f"{path} sees world latents: load it with the world's encoder (latents=...)")
    return DaggerAgent.load(path, latents)


def summarise(args, states, baselines) -> dict:
    rows = {}
    for c in args.conditions:
        finals = [s["final"] for s in states if s["condition"] == c]
        rows[c] = _row(finals)
        rows[c]["seeds"] = sorted(s["seed"] for s in states if s["condition"] == c)
        rows[c]["train_steps_per_s"] = float(np.mean([s["steps"] / max(s["train_seconds"], 1e-9)
                                                      for s in states if s["condition"] == c]))
        own = [s["own_world"] for s in states if s["condition"] == c and "own_world" in s]
        if own and len(own) == len(finals):
            rows[c]["own_world"] = _row(own)
    for name, finals in baselines.items():
        rows[name] = _row(finals)
        for key in ("action", "action_name"):
            if key in finals[0]:
                rows[name][key] = finals[0][key]
    transfer = {}
    if "twin" in rows and "random" in rows:
        for c in args.conditions:
            if c != "twin":
                transfer[c] = {m: transfer_ratio(rows[c][m], rows["twin"][m], rows["random"][m])
                               for m in ("mean_return", "success_rate")}
    return {"task": args.task, "budget": args.budget, "seeds": sorted({s["seed"] for s in states}),
            "num_envs": args.num_envs,
            "frame_size": args.frame_size, "checkpoint": args.checkpoint or "shipped default",
            "n_steps": args.n_steps, "features": _features(args), "algo": _algo(args), "episodes": args.episodes,
            "blur": args.blur,
            "eval_every": args.eval_every, "max_episode_steps": args.max_episode_steps,
            "task_kwargs": task_kwargs(args.task_kwargs), "ppo_kwargs": ppo_kwargs(getattr(args, "ppo_kwargs", None)),
            "world_kwargs": world_kwargs(getattr(args, "world_kwargs", None)),
            "rows": rows, "transfer": transfer, "runs": states}


def _row(finals) -> dict:
    ret, ret_ci = t_interval([f["mean_return"] for f in finals])
    suc, suc_ci = t_interval([f["success_rate"] for f in finals])
    row = {"mean_return": ret, "mean_return_ci": ret_ci, "success_rate": suc, "success_rate_ci": suc_ci,
           "n": len(finals)}
    for side in ("left", "right"):   # mean over seeds; absent from agents scored before it was recorded
        vals = [f[f"success_goal_{side}"] for f in finals if f"success_goal_{side}" in f]
        if len(vals) == len(finals):
            row[f"success_goal_{side}"] = float(np.mean(vals))
    return row


def _fmt(v, ci, nd=2) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{nd}f}" + (f" ± {ci:.{nd}f}" if np.isfinite(ci) else "")


def markdown(res) -> str:
    algo = ("DAgger (imitating the goal-pose oracle)" if res.get("algo") == "dagger" else "PPO")
    blur = f" (input blurred, sigma {res['blur']:g} px)" if res.get("blur") else ""
    lines = [f"Task `{res['task']}`: {algo} on {res.get('features', 'cnn')} features{blur}, {res['budget']} env steps per "
             f"agent, seeds {res['seeds']}, {res['num_envs']} envs x {res['n_steps']} steps per "
             f"{'round' if res.get('algo') == 'dagger' else 'rollout'}; every agent scored in "
             f"`{env_id('twin', res['task'])}` on {res['episodes']} held-out episodes (reset seeds from "
             f"{EVAL_SEED}). Mean ± 95% t-interval over seeds."
             + "".join(f" {name}: {', '.join(f'{k}={v}' for k, v in res[key].items())}."
                       for key, name in (("task_kwargs", "Task settings"), ("ppo_kwargs", "PPO settings"),
                                         ("world_kwargs", "Learned-world settings"))
                       if res.get(key)), "",
             "| agent | trained in | seeds | twin return | twin success rate | success, goals left / right "
             "| train env-steps/s |",
             "|---|---|---|---|---|---|---|"]
    where = {"learned": "ContextAsMemory (default retrieval)", "learned-recent": "ContextAsMemory (`recent`)",
             "twin": "CamWorld twin", "random": "-", "oracle": "- (scripted, true goal pose)",
             "constant": "- (the best single discrete action, repeated)"}
    for name, r in res["rows"].items():
        sps = f"{r['train_steps_per_s']:.1f}" if "train_steps_per_s" in r else "-"
        seeds = ", ".join(map(str, r.get("seeds", []))) or "-"
        label = (f"{name} (action {r['action']}" + (f", {r['action_name']})" if "action_name" in r else ")")
                 if "action" in r else name)
        sides = (f"{r['success_goal_left']:.2f} / {r['success_goal_right']:.2f}" if "success_goal_left" in r
                 and np.isfinite(r["success_goal_left"]) and np.isfinite(r["success_goal_right"]) else "-")
        lines.append(f"| {label} | {where.get(name, name)} | {seeds} | {_fmt(r['mean_return'], r['mean_return_ci'])} | "
                     f"{_fmt(r['success_rate'], r['success_rate_ci'])} | {sides} | {sps} |")
    own = {c: r["own_world"] for c, r in res["rows"].items() if "own_world" in r}
    if own:
        lines += ["", "Each agent also scored in the world it trained in (the same held-out episodes, generated by "
                      "that world): what it learned there, against what carries over to the twin.", "",
                  "| agent | success in its own world | success in the twin | return in its own world |",
                  "|---|---|---|---|"]
        for c, o in own.items():
            r = res["rows"][c]
            lines.append(f"| {c} | {_fmt(o['success_rate'], o['success_rate_ci'])} | "
                         f"{_fmt(r['success_rate'], r['success_rate_ci'])} | {_fmt(o['mean_return'], o['mean_return_ci'])} |")
    if res["transfer"]:
        lines += ["", "Transfer ratio (agent - random) / (twin agent - random), n/a where the twin agent does not "
                      "beat random:", "", "| agent | on return | on success rate |", "|---|---|---|"]
        for c, t in res["transfer"].items():
            lines.append(f"| {c} | {_fmt(t['mean_return'], float('nan'))} | {_fmt(t['success_rate'], float('nan'))} |")
    lines += ["", f"Wall time {res['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def plot_curves(res, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for c in dict.fromkeys(s["condition"] for s in res["runs"]):
        curves = [s["curve"] for s in res["runs"] if s["condition"] == c]
        n = min(len(cv) for cv in curves)
        if n == 0:
            continue
        x = [curves[0][i]["steps"] for i in range(n)]
        for ax, key in zip(axes, ("mean_return", "success_rate")):
            y = np.array([[cv[i][key] for i in range(n)] for cv in curves], np.float64)
            m = np.nanmean(y, 0)
            ax.plot(x, m, marker="o", label=c)
            if len(curves) > 1:
                ax.fill_between(x, np.nanmin(y, 0), np.nanmax(y, 0), alpha=0.2)
    for ax, key in zip(axes, ("mean_return", "success_rate")):
        for name, ls in (("random", ":"), ("oracle", "--"), ("constant", "-.")):
            if name in res["rows"] and np.isfinite(res["rows"][name][key]):
                ax.axhline(res["rows"][name][key], color="gray", ls=ls, label=name)
        ax.set_xlabel("env steps of training")
        ax.set_ylabel(f"twin {key.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{res['task']}: agents scored in the twin while they train (mean over seeds, band = min..max)",
                 fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_report(res, out: Path):
    write_text(out / "results.md", markdown(res))
    write_text(out / "results.json", json.dumps(res, indent=2, default=float))
    plot_curves(res, out / "curves.png")


# ---------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("what", choices=["agents"], help="agents: train in the generated world, score in the twin")
    p.add_argument("--task", default="goal-view", choices=sorted(TASK_IDS))
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--quick", action="store_true", help="tiny settings for CI (every piece, about a minute)")
    p.add_argument("--budget", type=int, default=None, help=f"env steps per agent (full: {FULL['budget']})")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help=f"training seeds (full: {FULL['seeds']})")
    p.add_argument("--num-envs", type=int, default=None, help=f"envs per agent, one batched world (full: {FULL['num_envs']})")
    p.add_argument("--n-steps", type=int, default=None, help=f"PPO rollout steps per env (full: {FULL['n_steps']})")
    p.add_argument("--algo", default="ppo", choices=["ppo", "dagger"],
                   help="ppo (SB3, reward only), or dagger (imitates the goal-pose oracle, whose labels come from "
                        "the poses; on world latents, or on pixels with --features correlation; goal-view and "
                        "return only)")
    p.add_argument("--features", default="cnn", choices=list(FEATURES),
                   help="what the agents see: pixels through a CNN trained from scratch (cnn); goal-view pixels "
                        "through a Siamese CNN correlated at every horizontal shift (correlation); or the frames "
                        "encoded by the world model's frozen VAE, with a small trained head (world-latent)")
    p.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                   help="with --features correlation: the agents' frames pass a fixed Gaussian low-pass of this "
                        "standard deviation (pixels) in the policy, in training and in scoring alike (default 0: none)")
    p.add_argument("--episodes", type=int, default=None, help=f"final twin episodes per agent (full: {FULL['episodes']})")
    p.add_argument("--eval-every", type=int, default=None, help=f"env steps between curve points (full: {FULL['eval_every']})")
    p.add_argument("--eval-episodes", type=int, default=None, help="twin episodes per curve point")
    p.add_argument("--max-episode-steps", type=int, default=None, help="episode cap (default: the task's registered one)")
    p.add_argument("--task-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="keyword arguments for every env of the task, e.g. excursion=walk min_goal_distance=1.0 "
                        "(goal-view goals that turning in place cannot reach)")
    p.add_argument("--ppo-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="PPO settings over camworld.agents.training.PPO_DEFAULTS, e.g. ent_coef=0.05 n_epochs=10")
    p.add_argument("--world-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="settings of the learned worlds only (the twin has none), e.g. warp_fill=mirror "
                        "sample_steps=8: agents trained in a variant of the world, scored in the same twin")
    p.add_argument("--checkpoint", default=None, help="learned-world checkpoint (default: the shipped one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="eval_agents")
    p.add_argument("--resume", action="store_true", help="continue from what --out holds")
    p.add_argument("--report", action="store_true",
                   help="train nothing: score the baselines and report the agents of --out that finished")
    p.add_argument("--rescore", action="store_true",
                   help="with --report: score the finished agents again on the held-out episodes (e.g. after the "
                        "evaluation gained a figure) instead of reporting their saved final scores")
    p.add_argument("--own-world", action="store_true",
                   help="with --report: also score each agent in the world it trained in (learned-world agents in "
                        "that learned world), beside its twin score")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    threads.add_argument(p)


def resolve(args):
    """Fill unset settings from --quick or the full setting; validate."""
    base = QUICK if args.quick else FULL
    for k, v in base.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    for k in ("budget", "num_envs", "n_steps", "episodes", "eval_every", "eval_episodes"):
        if int(getattr(args, k)) < 1:
            raise SystemExit(f"camworld eval agents: --{k.replace('_', '-')} must be >= 1, got {getattr(args, k)}")
    for flag in ("rescore", "own_world"):
        if getattr(args, flag, False) and not args.report:
            raise SystemExit(f"camworld eval agents: --{flag.replace('_', '-')} goes with --report (it scores agents "
                             "that finished)")
    if getattr(args, "algo", "ppo") == "dagger" and getattr(args, "ppo_kwargs", None):
        raise SystemExit(f"camworld eval agents: --ppo-kwargs {' '.join(args.ppo_kwargs)} sets PPO, and --algo dagger "
                         "trains no PPO: drop one of them")
    args.blur = blur = float(getattr(args, "blur", 0.0))
    if not (np.isfinite(blur) and blur >= 0):
        raise SystemExit(f"camworld eval agents: --blur must be a standard deviation >= 0 pixels, got {blur}")
    if blur and getattr(args, "features", "cnn") != "correlation":
        raise SystemExit(f"camworld eval agents: --blur low-passes the frames of the correlation head: it needs "
                         f"--features correlation, got --features {getattr(args, 'features', 'cnn')}")
    if len(set(args.seeds)) != len(args.seeds):
        raise SystemExit(f"camworld eval agents: --seeds must be distinct, got {args.seeds}")
    return args


def run(args) -> int:
    threads.apply(args.threads)
    res = run_benchmark(resolve(args))
    print(markdown(res))
    print(f"wrote {args.out}/results.md, results.json, curves.png and agents/*.zip")
    return 0
