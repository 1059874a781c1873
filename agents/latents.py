"""Agents that see the world through the world model's own encoder (the "V" of a V-M-C agent).

``WorldLatents`` turns frame observations (uint8 (H, W, 3), one or a batch, or a goal-view Dict of them)
into the latents the learned world generates in: the frozen VAE's posterior mean, scaled as the DiT sees
it (C x h x w floats, 4 x 16 x 16 for the shipped model). An agent then trains only a small head on them
(``camworld.agents.features.LatentGoalHead``). The encoder runs once per observation, in the env loop,
not in every PPO epoch, and a goal frame (constant within an episode) is encoded once per episode.

    lat = WorldLatents()                                      # the shipped world model's VAE
    venv = LatentVecEnv(make_sb3_vec_env("CamWorld-GoalView-v0", num_envs=8), lat)
    model = PPO("MultiInputPolicy", venv, policy_kwargs=dict(features_extractor_class=LatentGoalHead))
    evaluate(model, "CamWorld-GoalView-v0", obs_transform=lat)

An agent trained so takes latents: wrap whatever env it acts in with the same ``WorldLatents``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class WorldLatents:
    """Frames -> world-model latents, for observations and their spaces. ``checkpoint``: the world model
    (None: the shipped one), its frame size must be the env's. ``device``: where the encoder runs."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu"):
        from camworld.model import WorldModel

        self.checkpoint = checkpoint
        self.model = WorldModel.load(checkpoint, device=device)
        self.size = self.model.cfg.frame_size
        self.shape = tuple(self.model.latent_shape)
        self._goal_key = self._goal_lat = None

    def space(self, space: spaces.Space) -> spaces.Space:
        """The observation space of the latents of ``space`` (a frame Box, or a Dict of frame Boxes)."""
        if isinstance(space, spaces.Dict):
            return spaces.Dict({k: self.space(v) for k, v in space.spaces.items()})
        if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and space.shape == (self.size, self.size, 3)):
            raise ValueError(f"the world model encodes uint8 ({self.size}, {self.size}, 3) frames, got {space}")
        return spaces.Box(-np.inf, np.inf, self.shape, np.float32)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W, 3) -> float32 latents (..., C, h, w)."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.shape[-3:] != (self.size, self.size, 3):
            raise ValueError(f"frames must be uint8 (..., {self.size}, {self.size}, 3), got {frames.dtype} "
                             f"{frames.shape}")
        lead = frames.shape[:-3]
        z = self.model.encode(frames.reshape(-1, self.size, self.size, 3)).float().cpu().numpy()
        return z.reshape(*lead, *self.shape)

    def _goals(self, goals: np.ndarray) -> np.ndarray:
        """Goal frames change only at resets: encode the ones that differ from the last call's."""
        batch = goals.reshape(-1, self.size, self.size, 3)
        old = self._goal_key
        if old is None or old.shape != batch.shape:
            out = self.encode(batch)
        else:
            out = self._goal_lat.copy()
            new = np.flatnonzero((old != batch).reshape(len(batch), -1).any(1))
            if len(new):
                out[new] = self.encode(batch[new])
        self._goal_key, self._goal_lat = batch.copy(), out
        return out.reshape(*goals.shape[:-3], *self.shape)

    def __call__(self, obs):
        """An observation (one or a batch): frames, or a Dict whose "goal" entry is encoded once per change."""
        if isinstance(obs, dict):
            return {k: (self._goals(np.asarray(v)) if k == "goal" else self.encode(v)) for k, v in obs.items()}
        return self.encode(obs)


def LatentVecEnv(venv, latents: WorldLatents):
    """An SB3 VecEnv wrapper whose observations (and ``terminal_observation`` infos) are ``latents`` of
    the wrapped env's frames. A function returning the wrapper class's instance, so SB3 is imported only
    when used."""
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from camworld.envs.sb3 import ResetInfosFromWrapped

    class _LatentVecEnv(ResetInfosFromWrapped, VecEnvWrapper):   # reset infos hold the goal pose
        def __init__(self):
            super().__init__(venv, observation_space=latents.space(venv.observation_space))
            self.latents = latents

        def reset(self):
            return self.latents(self.venv.reset())

        def step_wait(self):
            obs, rewards, dones, infos = self.venv.step_wait()
            for info in infos:
                if "terminal_observation" in info:
                    t = info["terminal_observation"]
                    info["terminal_observation"] = ({k: self.latents.encode(v) for k, v in t.items()}
                                                    if isinstance(t, dict) else self.latents.encode(t))
            return self.latents(obs), rewards, dones, infos

    return _LatentVecEnv()
