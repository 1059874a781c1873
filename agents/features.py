"""SB3 feature extractors for camworld frames (64x64 by default; any size from 16 up).

SB3's ``NatureCNN`` (8x8 stride 4 first) is built for 84x84 Atari and warns under 36x36. These use
4x4 stride-2 convolutions that halve the frame three times (64 -> 8), then a linear layer.
SB3 transposes channel-last images and scales them to [0, 1] before they get here.

    PPO("CnnPolicy", venv, policy_kwargs=dict(features_extractor_class=FrameCNN))
    PPO("MultiInputPolicy", goal_venv, policy_kwargs=dict(features_extractor_class=GoalFrameExtractor))

Letters: B batch, C channels, H/W frame size, D features.
"""

from __future__ import annotations

import gymnasium as gym
import torch
import torch.nn as nn
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


def _conv_stack(in_channels: int, width: int = 32) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 4, 2, 1), nn.ReLU(),        # H/2
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),          # H/4
        nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(),      # H/8
        nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.ReLU(),      # H/8
        nn.Flatten(),
    )


def _channels_first_shape(space: gym.spaces.Box) -> tuple:
    shape = space.shape
    if len(shape) != 3:
        raise ValueError(f"expected an image space (C, H, W) or (H, W, C), got shape {shape}")
    return shape if shape[0] in (1, 3, 4, 6) and shape[-1] not in (1, 3, 4, 6) else (shape[2], shape[0], shape[1])


class FrameCNN(BaseFeaturesExtractor):
    """Frames (B, C, H, W) in [0, 1] -> features (B, D)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256, width: int = 32):
        super().__init__(observation_space, features_dim)
        C, H, W = _channels_first_shape(observation_space)
        if min(H, W) < 16:
            raise ValueError(f"FrameCNN needs frames of at least 16x16, got {H}x{W}")
        self.cnn = _conv_stack(C, width)
        with torch.no_grad():
            n = self.cnn(torch.zeros(1, C, H, W)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.shape[-1] in (1, 3, 4) and obs.shape[1] not in (1, 3, 4):   # channel-last input: make it (B, C, H, W)
            obs = obs.permute(0, 3, 1, 2)
        return self.linear(self.cnn(obs))


class GoalFrameExtractor(BaseFeaturesExtractor):
    """Goal-view ``Dict(frame, goal)`` -> features: both frames stacked on channels (early fusion),
    so the first convolutions compare them pixel by pixel."""

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 256, width: int = 32,
                 keys: tuple = ("frame", "goal")):
        super().__init__(observation_space, features_dim)
        missing = [k for k in keys if k not in observation_space.spaces]
        if missing:
            raise ValueError(f"GoalFrameExtractor needs Dict keys {keys}, missing {missing} "
                             f"(got {list(observation_space.spaces)})")
        self.keys = tuple(keys)
        C, H, W = _channels_first_shape(observation_space.spaces[keys[0]])
        self.cnn = _conv_stack(C * len(keys), width)
        with torch.no_grad():
            n = self.cnn(torch.zeros(1, C * len(keys), H, W)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def forward(self, obs: dict) -> torch.Tensor:
        x = []
        for k in self.keys:
            v = obs[k]
            if v.shape[-1] in (1, 3, 4) and v.shape[1] not in (1, 3, 4):
                v = v.permute(0, 3, 1, 2)
            x.append(v)
        return self.linear(self.cnn(torch.cat(x, 1)))                     # (B, 2C, H, W) -> (B, D)


class WorldLatentExtractor(BaseFeaturesExtractor):
    """Frames -> features through the world model's own frozen VAE encoder (the "V" of a V-M-C agent):
    each image key becomes its 4x16x16 latent (the posterior mean, as the world uses), and only a small
    convolutional head on top is trained. A goal-view ``Dict(frame, goal)`` also gets the latent
    difference frame - goal, so "the view matches the goal" is near-linear in the input. The encoder is
    the one the learned world generates in, trained on the sim's frames; it is part of the SB3 zip (small)
    and never updated (``requires_grad`` False; SB3's optimiser skips it).

        PPO("MultiInputPolicy", venv, policy_kwargs=dict(features_extractor_class=WorldLatentExtractor))

    ``checkpoint``: the world model whose VAE encodes (None: the shipped one); its frame size must be the
    env's. ``keys``: the image keys of a Dict space (None: ("frame", "goal")).
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 256, checkpoint: str | None = None,
                 width: int = 32, keys: tuple | None = None):
        super().__init__(observation_space, features_dim)
        from camworld.model import WorldModel

        if isinstance(observation_space, gym.spaces.Dict):
            self.keys = tuple(keys or ("frame", "goal"))
            missing = [k for k in self.keys if k not in observation_space.spaces]
            if missing:
                raise ValueError(f"WorldLatentExtractor needs Dict keys {self.keys}, missing {missing} "
                                 f"(got {list(observation_space.spaces)})")
            first = observation_space.spaces[self.keys[0]]
        else:
            self.keys, first = None, observation_space
        C, H, W = _channels_first_shape(first)
        wm = WorldModel.load(checkpoint, device="cpu")
        if (H, W) != (wm.cfg.frame_size,) * 2 or C != 3:
            raise ValueError(f"the world model encodes {wm.cfg.frame_size}x{wm.cfg.frame_size} RGB frames, "
                             f"the observations are {C}x{H}x{W}")
        self.encoder = wm.vae.encoder.float().eval().requires_grad_(False)
        self.latent_channels, self.latent_scale = wm.cfg.vae.latent_channels, float(wm.cfg.latent_scale)
        inputs = self.latent_channels * (1 if self.keys is None else len(self.keys) + 1)
        self.head = nn.Sequential(
            nn.Conv2d(inputs, width, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),          # latent / 2
            nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(),      # latent / 4
            nn.Flatten())
        with torch.no_grad():
            n = self.head(torch.zeros(1, inputs, wm.cfg.vae.latent_size, wm.cfg.vae.latent_size)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()                # frozen: GroupNorm has no running stats, but keep it explicit
        return self

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) or (B, H, W, 3) in [0, 1] (what SB3 passes) -> scaled latents (B, C, h, w)."""
        if x.shape[-1] == 3 and x.shape[1] != 3:
            x = x.permute(0, 3, 1, 2)
        with torch.no_grad():
            mean = self.encoder(x.float() * 2.0 - 1.0)[:, : self.latent_channels]
        return mean / self.latent_scale

    def forward(self, obs) -> torch.Tensor:
        if self.keys is None:
            z = self.latents(obs)
        else:
            zs = [self.latents(obs[k]) for k in self.keys]
            z = torch.cat(zs + [zs[0] - zs[1]], 1)
        return self.linear(self.head(z))
