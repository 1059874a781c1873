"""Adversarial decoder fine-tuning (the VAE stage with ``train.vae_adv_weight > 0``).

A decoder trained on L1 + MSE alone returns the mean of every image its latent could have come from: 16x16x4
latents keep 1,024 numbers of a frame's 12,288, so edges and textures come back soft (the shipped decoder keeps
0.33-0.43 of the sim's image-gradient energy). A patch discriminator, trained from scratch beside it, asks for
frames that look like renders patch by patch, the recipe of the latent-diffusion autoencoders (taming
transformers' VQGAN, Stable Diffusion's KL-f8), without the perceptual loss: that needs a pretrained VGG, which
this project does not download.

- ``PatchDiscriminator``: three strided 4x4 convolutions and a 3x3 head, one logit per 38x38-pixel patch on a
  stride of 8 (a 64x64 frame gives 8x8 logits), GroupNorm, LeakyReLU. No weights from anywhere.
- hinge losses (``d_hinge``, ``g_hinge``), as in VQGAN and SAGAN.
- the DiT's adversarial term (``train.dit_adv_weight``, ``camworld.train.dit``): the same discriminator on
  scaled latents judges the network's one-step prediction of the target from the warp start (the sampler's
  first call) against the encoded ground truth, as in adversarial diffusion distillation (ADD, LADD), so that
  where it has nothing to copy it draws a sample instead of the mean.
- ``adversarial_step``: one discriminator update and the generator's term, shared by both stages.
- ``adaptive_weight``: the adversarial term is scaled so that its gradient at the decoder's last layer has the
  reconstruction's size, times ``vae_adv_weight`` (VQGAN's rule); so one weight works at any loss scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) frames in [-1, 1] (or scaled latents) -> (B, 1, H / prod(strides), W / prod(strides))
    logits, one per overlapping patch. Frames: strides (2, 2, 2), 8x8 logits for 64x64; latents: (1, 2, 1), 8x8
    logits for a 16x16 latent, each judging a few latent cells (the strip a turn uncovers is 1-3 cells wide)."""

    def __init__(self, channels: int = 32, in_channels: int = 3, strides: tuple = (2, 2, 2)):
        super().__init__()
        c = int(channels)
        if c < 8:
            raise ValueError(f"discriminator channels must be >= 8, got {channels}")
        if len(strides) != 3 or any(s not in (1, 2) for s in strides):
            raise ValueError(f"strides must be three of 1 or 2, got {strides}")
        layers, cin = [], in_channels
        for i, (s, cout) in enumerate(zip(strides, (c, 2 * c, 2 * c))):
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1) if s == 2 else nn.Conv2d(cin, cout, 3, padding=1))
            if i:
                layers.append(nn.GroupNorm(8, cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def _mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return x.mean()
    return (x * weight).sum() / weight.sum().clamp_min(1e-6)


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator hinge loss: real above +1, fake below -1. ``fake_weight`` (the logits' shape): how much each
    fake patch counts (e.g. the share of it no context frame saw); None: all alike."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + _mean(F.relu(1.0 + fake_logits), fake_weight))


def g_hinge(fake_logits: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Generator side: raise the discriminator's logits on its frames (weighted per patch like ``d_hinge``)."""
    return -_mean(fake_logits, weight)


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last: torch.Tensor, scale: float,
                    cap: float = 1e4) -> torch.Tensor:
    """``scale * |d rec / d last| / |d adv / d last|`` (no gradient through it): the adversarial term's weight
    such that, at the decoder's last layer ``last``, it pulls as hard as the reconstruction times ``scale``."""
    g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last, retain_graph=True)[0]
    w = g_rec.norm() / (g_adv.norm() + 1e-4)
    return (w.clamp(0.0, cap) * scale).detach()


def adversarial_step(disc, dopt, real, fake, rec_loss, last, weight: float, unseen=None) -> dict:
    """One discriminator update on (``real``, ``fake``: (N, C, H, W), the generator's output of this step), then the
    generator's term ``g_term`` to add to its loss (0 while ``weight`` is 0: the discriminator learns, the generator
    does not hear it yet), scaled by ``adaptive_weight`` against ``rec_loss`` at the layer weight ``last``.
    ``unseen`` (N, H, W) or None: each fake patch counts by the mean of it over that patch (real patches all count).
    -> {"d_loss", "g_loss", "adv_w" (floats, for the log), "g_term"}."""
    disc.requires_grad_(True)
    fake_logits = disc(fake.detach())
    mask = None if unseen is None else F.adaptive_avg_pool2d(unseen[:, None].to(fake_logits.dtype), fake_logits.shape[-2:])
    d_loss = d_hinge(disc(real), fake_logits, mask)
    dopt.zero_grad(set_to_none=True)
    d_loss.backward()
    dopt.step()
    disc.requires_grad_(False)  # the generator's term must not leave gradients on the discriminator
    if weight <= 0:
        with torch.no_grad():
            g_loss = g_hinge(disc(fake), mask)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "adv_w": 0.0, "g_term": 0.0}
    g_loss = g_hinge(disc(fake), mask)
    w = adaptive_weight(rec_loss, g_loss, last, weight)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "adv_w": float(w), "g_term": w * g_loss}
