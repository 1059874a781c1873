"""SB3 feature extractors for camworld frames (64x64 by default; any size from 16 up).

SB3's ``NatureCNN`` (8x8 stride 4 first) is built for 84x84 Atari and warns under 36x36. These use
4x4 stride-2 convolutions that halve the frame three times (64 -> 8), then a linear layer.
SB3 transposes channel-last images and scales them to [0, 1] before they get here.

    PPO("CnnPolicy", venv, policy_kwargs=dict(features_extractor_class=FrameCNN))
    PPO("MultiInputPolicy", goal_venv, policy_kwargs=dict(features_extractor_class=GoalFrameExtractor))

Letters: B batch, C channels, H/W frame size, D features.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
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



class LatentGoalHead(BaseFeaturesExtractor):
    """Features from world-model latents (``camworld.agents.latents.WorldLatents`` observations): a small
    CNN over the latent grid; for a goal-view ``Dict(frame, goal)`` over [frame, goal, frame - goal], so
    "the view matches the goal" is near-linear in its input. Latents (B, C, h, w) float, not images: SB3
    passes them through untouched."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 256, width: int = 32,
                 keys: tuple = ("frame", "goal")):
        super().__init__(observation_space, features_dim)
        if isinstance(observation_space, gym.spaces.Dict):
            missing = [k for k in keys if k not in observation_space.spaces]
            if missing:
                raise ValueError(f"LatentGoalHead needs Dict keys {keys}, missing {missing} "
                                 f"(got {list(observation_space.spaces)})")
            self.keys, first = tuple(keys), observation_space.spaces[keys[0]]
        else:
            self.keys, first = None, observation_space
        if len(first.shape) != 3:
            raise ValueError(f"LatentGoalHead needs latent observations (C, h, w), got shape {first.shape}")
        C, h, w = first.shape
        inputs = C * (1 if self.keys is None else len(self.keys) + 1)
        self.head = nn.Sequential(
            nn.Conv2d(inputs, width, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),          # h / 2
            nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(),      # h / 4
            nn.Flatten())
        with torch.no_grad():
            n = self.head(torch.zeros(1, inputs, h, w)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def forward(self, obs) -> torch.Tensor:
        if self.keys is None:
            z = obs
        else:
            zs = [obs[k] for k in self.keys]
            z = torch.cat(zs + [zs[0] - zs[1]], 1)
        return self.linear(self.head(z.float()))


@functools.lru_cache(maxsize=8)
def _diagonal_means(W: int, device, dtype) -> torch.Tensor:
    """(W*W, 2W - 1) matrix that averages a flattened (W, W) matrix over its diagonals x - y = s, s = -(W-1)..W-1."""
    x, y = np.divmod(np.arange(W * W), W)
    A = np.zeros((W * W, 2 * W - 1), np.float32)
    A[np.arange(W * W), x - y + W - 1] = 1.0
    A /= A.sum(0, keepdims=True)
    return torch.as_tensor(A, device=device, dtype=dtype)


class GaussianBlur(nn.Module):
    """A fixed Gaussian low-pass (standard deviation ``sigma`` pixels; separable, border pixels repeated) on image
    batches (B, C, H, W); sigma 0 passes them through. Not trained."""

    def __init__(self, sigma: float = 0.0):
        super().__init__()
        sigma = float(sigma)
        if not (np.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"blur must be a finite standard deviation >= 0 pixels, got {sigma}")
        self.sigma, self.radius = sigma, int(np.ceil(3 * sigma))
        g = np.exp(-0.5 * (np.arange(-self.radius, self.radius + 1) / max(sigma, 1e-12)) ** 2)
        self.register_buffer("kernel", torch.tensor(g / g.sum(), dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radius == 0:
            return x
        B, C, H, W = x.shape
        r, k = self.radius, self.kernel.to(x.dtype)
        y = nn.functional.pad(x.reshape(B * C, 1, H, W), (r, r, r, r), mode="replicate")
        y = nn.functional.conv2d(nn.functional.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
        return y.reshape(B, C, H, W)


class GoalCorrelationExtractor(BaseFeaturesExtractor):
    """Goal-view ``Dict(frame, goal)`` -> features, for goals that a turn or a step shifts across the view.

    Early fusion (``GoalFrameExtractor``) compares the two frames pixel by pixel, at the same place, so it cannot
    tell which way the goal's content has moved. Here one CNN (shared weights, a Siamese pair) turns each frame
    into column descriptors (height pooled away, centred over the columns, L2 normalised: (B, D, W/4)), and their
    cosine similarity at every horizontal shift of the goal against the frame is a 1-D cost volume (FlowNet's
    correlation layer, along x only): its peak says how far and which way the goal lies. Features: that curve,
    the two frames' pooled descriptors and their difference. Left/right accuracy on held-out glance pairs after
    8 supervised epochs on 3,000 (``scripts/goal_direction_probe.py``): early fusion 0.48-0.53, this head 0.87.

    ``blur`` (pixels, default 0: none): both frames pass a fixed Gaussian low-pass first (``GaussianBlur``), so the
    policy reads the coarse layout that a generated world and the real one share, not the fine texture that only
    the real one has. Agents trained in the learned world and scored in the twin: see docs/benchmarks/agents.md."""

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 256, width: int = 32,
                 keys: tuple = ("frame", "goal"), blur: float = 0.0):
        super().__init__(observation_space, features_dim)
        self.blur = GaussianBlur(blur)
        missing = [k for k in keys if k not in observation_space.spaces]
        if missing or len(keys) != 2:
            raise ValueError(f"GoalCorrelationExtractor needs the two Dict keys {keys}, missing {missing} "
                             f"(got {list(observation_space.spaces)})")
        self.keys = tuple(keys)
        C, H, W = _channels_first_shape(observation_space.spaces[keys[0]])
        if min(H, W) < 16:
            raise ValueError(f"GoalCorrelationExtractor needs frames of at least 16x16, got {H}x{W}")
        self.cnn = nn.Sequential(
            nn.Conv2d(C, width, 4, 2, 1), nn.ReLU(),                  # H/2
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),          # H/4
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.ReLU())      # H/4
        with torch.no_grad():
            self.columns = int(self.cnn(torch.zeros(1, C, H, W)).shape[-1])
        n = (2 * self.columns - 1) + 3 * 2 * width
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def _columns(self, v: torch.Tensor) -> tuple:
        """Frames -> (column descriptors (B, D, W'), centred over the columns and L2 normalised, so that the
        correlation compares what differs along the view, not what every column shares; pooled (B, D))."""
        if v.shape[-1] in (1, 3, 4) and v.shape[1] not in (1, 3, 4):
            v = v.permute(0, 3, 1, 2)
        cols = self.cnn(self.blur(v)).mean(2)                             # (B, D, W')
        pooled = cols.mean(-1)
        return nn.functional.normalize(cols - pooled[..., None], dim=1), pooled

    @staticmethod
    def correlation(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Column descriptors (B, D, W') x2 -> (B, 2W' - 1): entry W' - 1 + s is the mean over the overlap of
        <f[:, :, x], g[:, :, x - s]>, for s = -(W'-1) .. W'-1: the goal's content seen s columns to the right."""
        Wc = f.shape[-1]
        gram = torch.bmm(f.transpose(1, 2), g).flatten(1)                # (B, W'W'): <f[:, :, x], g[:, :, y]>
        return gram @ _diagonal_means(Wc, gram.device, gram.dtype)        # mean over x - y = s, one matmul

    def forward(self, obs: dict) -> torch.Tensor:
        (f, pf), (g, pg) = self._columns(obs[self.keys[0]]), self._columns(obs[self.keys[1]])
        return self.linear(torch.cat([self.correlation(f, g), pf, pg, pf - pg], 1))
