"""Median seconds per env step of ContextAsMemory-v0 (N=1, and make_vec N=4) for the camworld first on sys.path.

    .venv/bin/python scripts/step_time.py [PATH_TO_OTHER_CHECKOUT]   # compare code versions, alternating runs

An older checkout is imported from its folder: link its envs/ and agents/ into its camworld/ first
(ln -s ../envs OLD/camworld/envs; ln -s ../agents OLD/camworld/agents), as the installed package maps them.
"""
import sys, time
if len(sys.argv) > 1 and sys.argv[1] != "-":
    sys.path.insert(0, sys.argv[1])
import numpy as np, torch
torch.set_num_threads(2)
import gymnasium as gym
import camworld
print("camworld from", camworld.__file__)
env = gym.make("ContextAsMemory-v0")
env.reset(seed=0)
acts = np.random.default_rng(0).integers(0, 7, 40)
for a in acts[:3]:
    env.step(int(a))
ts = []
for a in acts[3:23]:
    t = time.perf_counter(); env.step(int(a)); ts.append(time.perf_counter() - t)
print("N=1 median s/step", np.median(ts))
venv = gym.make_vec("ContextAsMemory-v0", num_envs=4)
venv.reset(seed=0)
for a in acts[:2]:
    venv.step(np.full(4, a))
ts = []
for a in acts[2:12]:
    t = time.perf_counter(); venv.step(np.full(4, a)); ts.append(time.perf_counter() - t)
print("N=4 median s/step", np.median(ts))
