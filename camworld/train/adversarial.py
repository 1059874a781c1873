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
- ``adaptive_weight``: the adversarial term is scaled so that its gradient at the decoder's last layer has the
  reconstruction's size, times ``vae_adv_weight`` (VQGAN's rule); so one weight works at any loss scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) frames in [-1, 1] (or scaled latents) -> (B, 1, H/8, W/8) logits, one per
    overlapping patch (first_stride=1, for a 16x16 latent: (B, 1, 4, 4))."""

    def __init__(self, channels: int = 32, in_channels: int = 3, first_stride: int = 2):
        super().__init__()
        c = int(channels)
        if c < 8:
            raise ValueError(f"discriminator channels must be >= 8, got {channels}")
        if first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {first_stride}")
        first = (nn.Conv2d(in_channels, c, 4, stride=2, padding=1) if first_stride == 2
                 else nn.Conv2d(in_channels, c, 3, padding=1))
        self.body = nn.Sequential(
            first, nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 2 * c, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 1, 3, padding=1))

    def forward(self, x):
        return self.body(x)


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: real above +1, fake below -1."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator (decoder) side: raise the discriminator's logits on its frames."""
    return -fake_logits.mean()


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last: torch.Tensor, scale: float,
                    cap: float = 1e4) -> torch.Tensor:
    """``scale * |d rec / d last| / |d adv / d last|`` (no gradient through it): the adversarial term's weight
    such that, at the decoder's last layer ``last``, it pulls as hard as the reconstruction times ``scale``."""
    g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last, retain_graph=True)[0]
    w = g_rec.norm() / (g_adv.norm() + 1e-4)
    return (w.clamp(0.0, cap) * scale).detach()
