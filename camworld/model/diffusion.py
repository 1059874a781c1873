"""Flow matching (rectified flow) objective and a few-step Euler sampler, apart from the network.

Convention: z_t = (1 - t) z_0 + t eps, t in [0, 1] (t = 1 is pure noise); the network predicts the
velocity v = eps - z_0 (paper Eq. 1 uses epsilon; any modern objective is allowed, DESIGN §7).
Context latents never enter this module's updates: they live in ``ContextState`` and stay clean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_t(batch: int, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """Logit-normal timesteps (SD3): most weight at mid noise, where the conditioning matters."""
    u = torch.randn(batch, generator=generator, device=device)
    return torch.sigmoid(u)


def flow_loss(dit, z0, tgt_ext, state, generator: torch.Generator | None = None):
    """Velocity MSE on the target latents only. z0 (B, Ft, C, h, w)."""
    B = z0.shape[0]
    t = sample_t(B, generator, z0.device)
    eps = torch.randn(z0.shape, generator=generator, device=z0.device)
    tt = t.view(B, 1, 1, 1, 1)
    zt = (1 - tt) * z0 + tt * eps
    v = dit(zt, t, tgt_ext, state)
    return F.mse_loss(v, eps - z0)


def noise_context(ctx, ctx_mask, level, generator: torch.Generator | None = None, eps=None):
    """Context noise augmentation: move clean context latents ctx (B, Fc, C, h, w) to flow time
    ``level`` (B,) per sample, z = (1 - level) z0 + level eps; padded frames (ctx_mask False) stay 0.
    ``eps``: optional noise of ctx's shape, else drawn from ``generator``. Returns the noised latents."""
    B = ctx.shape[0]
    level = torch.as_tensor(level, dtype=ctx.dtype, device=ctx.device).reshape(-1)
    if level.numel() == 1:
        level = level.expand(B)
    if level.shape != (B,):
        raise ValueError(f"context noise level must be a scalar or (B,) = ({B},), got {tuple(level.shape)}")
    if eps is None:
        eps = torch.randn(ctx.shape, generator=generator, device=ctx.device)
    lv = level.view(B, 1, 1, 1, 1)
    out = (1 - lv) * ctx + lv * eps.to(ctx.dtype)
    return out * ctx_mask.to(ctx.dtype)[..., None, None, None]


def timesteps(steps: int, shift: float = 1.0, device=None, start: float = 1.0,
              through: float | None = None) -> torch.Tensor:
    """steps + 1 decreasing times from 1 to 0, optionally shifted towards high noise. ``start`` < 1: the
    schedule's tail below ``start``, begun at ``start`` (SDEdit: fewer network calls, at most ``steps``).
    ``through``: a time in (0, start) the schedule must pass through (inserted when it is not one of its times:
    one more network call)."""
    t = torch.linspace(1.0, 0.0, steps + 1, device=device)
    ts = shift * t / (1 + (shift - 1) * t)
    if not 0.0 < start <= 1.0:
        raise ValueError(f"sampling start time must be in (0, 1], got {start}")
    if start < 1.0:
        ts = torch.cat([torch.full((1,), float(start), device=device), ts[ts < start - 1e-6]])
    if through is not None:
        if not 0.0 < through < start:
            raise ValueError(f"the schedule's through time must be in (0, start = {start:g}), got {through}")
        if not bool((ts - through).abs().lt(1e-6).any()):
            ts = torch.sort(torch.cat([ts, torch.full((1,), float(through), device=device)]), descending=True)[0]
    return ts


@torch.no_grad()
def sample(dit, shape, tgt_ext, state, state_uncond=None, steps: int = 8, guidance: float = 1.0,
           shift: float = 1.0, generator: torch.Generator | None = None, device=None, noise=None,
           start: float = 1.0, known=None, known_mask=None, known_eps=None, known_until: float | None = None):
    """Euler integration from noise to latents. shape = (B, Ft, C, h, w).

    ``start`` < 1: ``noise`` is a partly noised latent at flow time ``start`` (z_start = (1 - start) z0 +
    start eps) and the integration runs from there (``timesteps``'s tail: fewer network calls).

    ``known`` (shape, clean latents), ``known_mask`` (broadcastable to shape, 1 where known) and ``known_until``
    in (0, start): inpainting by replacement (RePaint). After every step that lands at a time t >= known_until,
    the known latents are put back at that time, (1 - t) known + t known_eps (``known_eps``: their noise, of
    shape); from known_until down the network refines the whole latent. So what is unknown is generated from
    the higher noise ``start`` while what is known enters as an SDEdit start at ``known_until``.

    With ``guidance != 1`` and an unconditional context state (empty prompt), applies text CFG:
    v = v_u + guidance * (v_c - v_u).
    """
    z = torch.randn(shape, generator=generator, device=device) if noise is None else noise.reshape(shape).clone()
    if known is not None:
        if known_mask is None or known_eps is None or known_until is None:
            raise ValueError("inpainting needs known, known_mask, known_eps and known_until together")
        ts = timesteps(steps, shift, device, start, through=known_until)
        known, known_eps = known.reshape(shape).float(), known_eps.reshape(shape).float()
        m = known_mask.float()
    else:
        ts = timesteps(steps, shift, device, start)
    B = shape[0]
    use_u = state_uncond is not None and guidance != 1.0
    prep = prep_u = None
    if getattr(state, "kv", None) is not None and hasattr(dit, "prepare_targets"):  # the same at every step
        prep = dit.prepare_targets(tgt_ext, state)
        prep_u = dit.prepare_targets(tgt_ext, state_uncond) if use_u else None
    for i in range(len(ts) - 1):
        t = ts[i].expand(B)
        v = dit(z, t, tgt_ext, state, prep=prep).float()   # the network may run in bfloat16; z stays float32
        if use_u:
            v_u = dit(z, t, tgt_ext, state_uncond, prep=prep_u).float()
            v = v_u + guidance * (v - v_u)
        z = z + (ts[i + 1] - ts[i]) * v
        t1 = float(ts[i + 1])
        if known is not None and t1 >= known_until - 1e-6:
            z = m * ((1 - t1) * known + t1 * known_eps) + (1 - m) * z
    return z
