"""Frame VAE: 64x64x3 frames <-> 8x8xC latents (paper §3.1 uses a causal 3D VAE; context frames are
encoded one by one, so a per-frame autoencoder is the same thing for our purposes).

Letters: B batch, C channels, H/W frame size, h/w latent size.
Frames enter as float in [-1, 1], (B, 3, H, W).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from camworld.model.config import VAEConfig


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    """64x64 -> 8x8: no residual blocks at full resolution (the CPU cost is there), one per lower level."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.channels
        layers = [nn.Conv2d(3, ch[0], 3, padding=1), nn.SiLU(), nn.Conv2d(ch[0], ch[0], 4, stride=2, padding=1)]
        for cin, c in zip(ch[:-1], ch[1:]):
            layers += [ResBlock(cin, c), nn.Conv2d(c, c, 3, stride=2, padding=1)]
        layers += [ResBlock(ch[-1], ch[-1]), _norm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):  # (B, 3, H, W) -> (B, 2C, h, w)
        return self.body(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = tuple(reversed(cfg.channels))
        layers = [nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1), ResBlock(ch[0], ch[0])]
        for cin, c in zip(ch[:-1], ch[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), ResBlock(cin, c)]
        layers += [_norm(ch[-1]), nn.SiLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                   nn.Conv2d(ch[-1], ch[-1], 3, padding=1), nn.SiLU(), nn.Conv2d(ch[-1], 3, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, z):  # (B, C, h, w) -> (B, 3, H, W)
        return self.body(z)


class VAE(nn.Module):
    """Per-frame VAE with a tiny KL term. ``encode`` returns the posterior mean (deterministic)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def encode_dist(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 5.0)

    def encode(self, x):
        return self.encode_dist(x)[0]

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x, generator: torch.Generator | None = None):
        return self.loss(x, generator)

    def loss(self, x, generator: torch.Generator | None = None):
        """Reconstruction (L1 + MSE) plus a small KL; returns (loss, recon)."""
        mean, logvar = self.encode_dist(x)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + (0.5 * logvar).exp() * noise
        recon = self.decode(z)
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return rec + self.cfg.kl_weight * kl, recon


def frames_to_tensor(frames, device=None) -> torch.Tensor:
    """uint8 (..., H, W, 3) numpy/torch -> float (..., 3, H, W) in [-1, 1]."""
    t = torch.as_tensor(frames, device=device)
    if t.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (..., H, W, 3), got {t.dtype}")
    return t.movedim(-1, -3).float().div(127.5).sub(1.0)


def tensor_to_frames(x: torch.Tensor):
    """float (..., 3, H, W) in [-1, 1] -> uint8 numpy (..., H, W, 3)."""
    return x.clamp(-1, 1).add(1.0).mul(127.5).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()
