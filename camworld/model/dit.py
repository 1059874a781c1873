"""The Context-as-Memory DiT (paper §3.1-3.2, Fig. 2), sized for CPUs.

Each block: spatial (per-frame) attention -> camera embedding added (paper Eq. 2, plus per-token
Pluecker rays, DESIGN §7) -> spatio-temporal attention over context + target tokens -> text
cross-attention -> FFN, each sub-layer modulated by adaLN from the per-frame timestep (+ pooled text).

Context conditioning is concatenation along the frame axis: clean context latents are tokens like
the noisy target ones, at timestep 0, never updated, and excluded from the loss. Target frames keep
RoPE frame positions 0..Ft-1 (as without context); context frames get their own positions (one shared
position -1 by default, or -Fc..-1 by recency: ``DiTConfig.context_positions``). With ``context_self_only`` the context tokens attend only to context, so their keys
and values are computed once per env step (``encode_context``) and reused at every denoising step.

Letters: B batch, F frames (Fc context, Ft target), N tokens per frame, D width, L text tokens,
C latent channels, h/w latent grid, g = h / patch token grid side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from camworld.geometry import focal_from_hfov
from camworld.model.config import WorldModelConfig
from camworld.model.text import TextEncoder

# ---------------------------------------------------------------- rotary position embedding


def rope_tables(pos: torch.Tensor, head_dim: int):
    """3D RoPE angles for token positions (..., 3) as (frame, row, col) -> cos, sin (..., head_dim/2).

    The head's rotation pairs are split between the three axes: rows and cols get (hd/2)//3 pairs
    each, frames the rest.
    """
    pairs = head_dim // 2
    n_s = pairs // 3
    n_f = pairs - 2 * n_s
    dev = pos.device

    def freqs(n, base):
        return 1.0 / base ** (torch.arange(n, device=dev, dtype=torch.float32) / max(n, 1))

    ang = torch.cat([pos[..., :1].float() * freqs(n_f, 1000.0),
                     pos[..., 1:2].float() * freqs(n_s, 100.0),
                     pos[..., 2:3].float() * freqs(n_s, 100.0)], -1)
    return ang.cos(), ang.sin()


def rope_pairs(cos: torch.Tensor, sin: torch.Tensor) -> tuple:
    """``rope_tables``' cos/sin (..., hd/2) -> the per-channel tables ``apply_rope`` takes (..., hd): cos repeated
    over each rotation pair (c, c), sin signed (-s, s)."""
    return cos.repeat_interleave(2, -1), torch.stack([-sin, sin], -1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, heads, T, hd) by the RoPE angles: cos/sin are ``rope_pairs``'
    per-channel tables (..., hd), broadcastable to (B, 1, T, hd). Each pair becomes (x1 c - x2 s, x2 c + x1 s),
    with the same products and sums as rotating the halves apart, so bit for bit the same, in three
    elementwise passes and one pair swap (4x faster on CPU than slicing and stacking the pairs)."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)          # (x2, x1) in each pair
    return x * cos + swapped * sin


# ---------------------------------------------------------------- layers


def modulate(x, shift, scale):
    return torch.addcmul(shift, x, 1 + scale)      # x * (1 + scale) + shift in one pass over x


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def split(self, x):  # (B, T, D) -> (B, heads, T, hd)
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.hd).transpose(1, 2)

    def qkv(self, x, ctx=None, rope=None, rope_k=None):
        q = self.split(self.q(x))
        k, v = self.kv(x if ctx is None else ctx).chunk(2, -1)
        k, v = self.split(k), self.split(v)
        if rope is not None:
            q = apply_rope(q, *rope)
            k = apply_rope(k, *(rope if rope_k is None else rope_k))
        return q, k, v

    def attend(self, q, k, v, mask=None):
        """mask: bool, broadcastable to (B, heads, Tq, Tk), True = may attend."""
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        B, _, T, _ = o.shape
        return self.out(o.transpose(1, 2).reshape(B, T, -1))


class Block(nn.Module):
    """One DiT block over a set of frames (B, F, N, D), optionally attending to cached prefix K/V."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.n1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.spatial = Attention(dim, heads)
        self.cam = nn.Linear(dim, dim)  # per-block projection of the camera features (zero-init)
        self.n2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.st = Attention(dim, heads)
        self.n3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.cross = Attention(dim, heads)
        self.n4 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        # adaLN-single (PixArt): one shared modulation MLP in the DiT plus this per-block offset table
        self.ada_bias = nn.Parameter(torch.zeros(12, dim))

    def forward(self, x, c, cam, rope_s, rope_st, text, text_mask, key_mask, prefix=None, prefix_mask=None,
                attn_mask=None, cam_add=None, text_kv=None, kv_buf=None):
        """
        x (B, F, N, D) tokens; c (B, F, 12, D) shared adaLN modulation; cam (B, F, N, D) camera features;
        rope_s: cos/sin (N, hd) spatial; rope_st: cos/sin (B, 1, F*N, hd) (``rope_pairs``' tables);
        text (B, L, D), text_mask (B, L); key_mask (B, F) valid frames of x;
        prefix: cached (k, v) each (B, heads, P, hd) with prefix_mask (B, P), or None;
        attn_mask: optional full (B, 1, F*N, F*N) bool mask replacing the key mask;
        cam_add: precomputed ``self.cam(cam)`` and text_kv: precomputed text (k, v) (``DiT.prepare_targets``:
        the same at every sampler step), else computed here; kv_buf: (k, v, mask) buffers holding the prefix
        followed by room for this call's keys/values, and the full key mask (no concatenation per step).
        Returns (x_out, (k, v)) where (k, v) are this block's spatio-temporal keys/values of x.
        """
        B, Fr, N, D = x.shape
        mods = (c + self.ada_bias).unsqueeze(2).unbind(3)  # 12 x (B, F, 1, D)
        (s1, sc1, g1, s2, sc2, g2, s3, sc3, g3, s4, sc4, g4) = mods

        # spatial attention within each frame
        h = modulate(self.n1(x), s1, sc1).reshape(B * Fr, N, D)
        q, k, v = self.spatial.qkv(h, rope=rope_s)
        x = torch.addcmul(x, g1, self.spatial.attend(q, k, v).view(B, Fr, N, D))

        # camera embedding added before the 3D attention (paper Eq. 2)
        x = x + (self.cam(cam) if cam_add is None else cam_add)

        # spatio-temporal attention over all frames (+ cached context prefix)
        h = modulate(self.n2(x), s2, sc2).reshape(B, Fr * N, D)
        q, k, v = self.st.qkv(h, rope=rope_st)
        if kv_buf is not None:                                             # prefix already in place
            k_all, v_all, kmask = kv_buf
            P = k_all.shape[2] - k.shape[2]
            k_all[:, :, P:], v_all[:, :, P:] = k, v
        elif prefix is not None:
            kmask = key_mask.repeat_interleave(N, dim=1)                   # (B, F*N)
            k_all, v_all = torch.cat([prefix[0], k], 2), torch.cat([prefix[1], v], 2)
            kmask = torch.cat([prefix_mask, kmask], 1)
        else:
            k_all, v_all = k, v
            kmask = key_mask.repeat_interleave(N, dim=1)
        if attn_mask is None:
            attn_mask = kmask if kmask.dim() == 4 else kmask[:, None, None, :]
        o = self.st.attend(q, k_all, v_all, mask=attn_mask)
        x = torch.addcmul(x, g2, o.view(B, Fr, N, D))

        # text cross-attention
        h = modulate(self.n3(x), s3, sc3).reshape(B, Fr * N, D)
        kt, vt = self.text_kv(text) if text_kv is None else text_kv
        q = self.cross.split(self.cross.q(h))
        o = self.cross.attend(q, kt, vt, mask=text_mask[:, None, None, :])
        x = torch.addcmul(x, g3, o.view(B, Fr, N, D))

        # feed-forward
        x = torch.addcmul(x, g4, self.mlp(modulate(self.n4(x), s4, sc4)))
        return x, (k, v)

    def text_kv(self, text):
        """The cross-attention's keys and values of the text tokens (B, L, D) -> each (B, heads, L, hd)."""
        k, v = self.cross.kv(text).chunk(2, -1)
        return self.cross.split(k), self.cross.split(v)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 128):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):  # (...,) in [0, 1] -> (..., D)
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = (t.float() * 1000.0)[..., None] * freqs
        return self.mlp(torch.cat([args.cos(), args.sin()], -1).to(self.mlp[0].weight.dtype))


# ---------------------------------------------------------------- the network


@dataclass
class ContextState:
    """Everything about the context that is fixed during sampling: computed once per env step."""
    kv: list | None          # per block (k, v), each (B, heads, Fc*N, hd); None in joint mode
    mask: torch.Tensor       # (B, Fc*N) valid context tokens
    frame_mask: torch.Tensor  # (B, Fc)
    tokens: torch.Tensor     # (B, Fc, N, D) embedded context tokens (joint mode re-runs them)
    cam: torch.Tensor        # (B, Fc, N, D) context camera features
    ref: torch.Tensor        # (B, 3, 4) camera-to-world of the newest context frame
    text: tuple              # (text tokens (B, L, D), text mask (B, L), pooled (B, D))
    t: torch.Tensor | None = None  # (B,) flow time of the context latents (context noise level); None = 0
    newest: torch.Tensor | None = None  # (B, 1, N, C*p*p) patches of the newest context latent (newest_concat)


@dataclass
class TargetState:
    """What the denoising passes of one segment share (``DiT.prepare_targets``): computed once per segment
    instead of at every sampler step. Cached-context path only."""
    cam: torch.Tensor         # (B, Ft, N, D) target camera features
    cam_add: list             # per block: its camera projection of ``cam``
    text_kv: list             # per block: the text (k, v) of its cross-attention
    rope_s: tuple             # spatial RoPE cos/sin
    rope_st: tuple            # spatio-temporal RoPE cos/sin of the target frames
    ones: torch.Tensor        # (B, Ft) all-valid target frame mask
    kv_buf: list              # per block: (k, v) buffers (B, heads, P + Ft*N, hd) with the context prefix in
                              # place, and the key mask (B, 1, 1, P + Ft*N)


def relative_cameras(ext: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """ext (B, F, 3, 4) camera-to-world, ref (B, 3, 4) -> (B, F, 3, 4) poses in ref's camera frame."""
    R, t = ref[:, :3, :3], ref[:, :3, 3]
    Rt = R.transpose(1, 2)                                             # world -> ref rotation
    Rr = Rt[:, None] @ ext[..., :3, :3]                                # (B, F, 3, 3)
    tr = (Rt[:, None] @ (ext[..., :3, 3] - t[:, None])[..., None])[..., 0]
    return torch.cat([Rr, tr[..., None]], -1)


class DiT(nn.Module):
    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dit
        C, s, p = cfg.vae.latent_channels, cfg.vae.latent_size, d.patch
        if s % p:
            raise ValueError(f"latent size {s} must be divisible by patch {p}")
        self.C, self.p, self.g = C, p, s // p
        self.N = self.g * self.g
        D = d.width
        self.patch_in = nn.Linear(C * p * p, D)
        self.cond_in = nn.Linear(C * p * p, D) if d.newest_concat else None  # zero-init: starts as the plain DiT
        self.t_embed = TimestepEmbedder(D)
        self.text = TextEncoder(d.text_vocab, d.text_len, d.text_dim, d.text_layers)
        self.text_kv = nn.Linear(d.text_dim, D)
        self.text_pool = nn.Linear(d.text_dim, D)
        self.cam_frame = nn.Sequential(nn.Linear(12, D), nn.SiLU(), nn.Linear(D, D))
        self.cam_ray = nn.Sequential(nn.Linear(6, D), nn.SiLU(), nn.Linear(D, D)) if d.ray_embedding else None
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(D, 12 * D))
        self.blocks = nn.ModuleList([Block(D, d.heads, d.mlp_ratio) for _ in range(d.depth)])
        self.final_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.final = nn.Linear(D, C * p * p)

        # token grid: camera-frame ray directions through token centres, and (row, col) positions
        H = cfg.frame_size
        f = focal_from_hfov(H, cfg.hfov_deg)
        centres = (torch.arange(self.g, dtype=torch.float32) + 0.5) * (H / self.g) - H / 2
        vv, uu = torch.meshgrid(centres / f, centres / f, indexing="ij")
        dirs = torch.stack([uu, vv, torch.ones_like(uu)], -1).reshape(self.N, 3)
        self.register_buffer("token_dirs", dirs / dirs.norm(dim=-1, keepdim=True), persistent=False)
        ii, jj = torch.meshgrid(torch.arange(self.g), torch.arange(self.g), indexing="ij")
        self.register_buffer("grid_pos", torch.stack([ii, jj], -1).reshape(self.N, 2), persistent=False)
        self.initialize()

    def initialize(self):
        """All init in one place; new conditioning paths start at zero (adaLN-Zero)."""
        def _basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(_basic)
        nn.init.zeros_(self.ada[-1].weight), nn.init.zeros_(self.ada[-1].bias)
        for blk in self.blocks:
            nn.init.zeros_(blk.cam.weight), nn.init.zeros_(blk.cam.bias)
        if self.cond_in is not None:
            nn.init.zeros_(self.cond_in.weight), nn.init.zeros_(self.cond_in.bias)
        nn.init.zeros_(self.final_ada[-1].weight), nn.init.zeros_(self.final_ada[-1].bias)
        nn.init.zeros_(self.final.weight), nn.init.zeros_(self.final.bias)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)

    # -- pieces ------------------------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype: inputs are cast to it, and float32 inference is the reference."""
        return self.patch_in.weight.dtype

    def patchify(self, z):  # (B, F, C, h, w) -> (B, F, N, C*p*p)
        B, Fr, C, h, w = z.shape
        p, g = self.p, self.g
        z = z.view(B, Fr, C, g, p, g, p).permute(0, 1, 3, 5, 2, 4, 6)
        return z.reshape(B, Fr, g * g, C * p * p)

    def unpatchify(self, x):  # (B, F, N, C*p*p) -> (B, F, C, h, w)
        B, Fr, _, _ = x.shape
        p, g, C = self.p, self.g, self.C
        x = x.view(B, Fr, g, g, C, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(B, Fr, C, g * p, g * p)

    def camera_features(self, ext, ref):
        """ext (B, F, 3, 4) world cameras, ref (B, 3, 4) -> (B, F, N, D) camera features."""
        rel = relative_cameras(ext.float(), ref.float())                   # (B, F, 3, 4), geometry in float32
        rel = torch.cat([rel[..., :3], rel[..., 3:] * self.cfg.dit.translation_scale], -1)
        feat = self.cam_frame(rel.flatten(-2).to(self.dtype))[:, :, None]   # (B, F, 1, D)
        if self.cam_ray is not None:
            d = torch.einsum("bfij,nj->bfni", rel[..., :3], self.token_dirs.float())  # (B, F, N, 3)
            o = rel[..., 3][:, :, None].expand_as(d)
            plucker = torch.cat([d, torch.cross(o, d, dim=-1)], -1)          # (B, F, N, 6)
            feat = feat + self.cam_ray(plucker.to(self.dtype))
        else:
            feat = feat.expand(-1, -1, self.N, -1)
        return feat

    def rope_st(self, frame_pos):
        """frame_pos (B, F) -> cos/sin (B, 1, F*N, hd) for spatio-temporal attention (``rope_pairs``)."""
        B, Fr = frame_pos.shape
        pos = torch.cat([frame_pos[:, :, None, None].expand(B, Fr, self.N, 1),
                         self.grid_pos[None, None].expand(B, Fr, self.N, 2)], -1).reshape(B, Fr * self.N, 3)
        cos, sin = rope_pairs(*rope_tables(pos, self.cfg.dit.width // self.cfg.dit.heads))
        return cos[:, None].to(self.dtype), sin[:, None].to(self.dtype)

    def rope_spatial(self):
        pos = torch.cat([torch.zeros_like(self.grid_pos[:, :1]), self.grid_pos], -1)
        cos, sin = rope_pairs(*rope_tables(pos, self.cfg.dit.width // self.cfg.dit.heads))
        return cos.to(self.dtype), sin.to(self.dtype)

    def context_positions(self, B: int, Fc: int, device) -> torch.Tensor:
        """RoPE frame positions of the context (B, Fc): their own, apart from the targets' 0..Ft-1.
        "ranked": -Fc..-1 by recency (newest -1); "shared": all -1, so any k works at inference without
        extrapolating to positions never trained (frames are told apart by their cameras)."""
        if self.cfg.dit.context_positions == "shared":
            return torch.full((B, Fc), -1, device=device)
        return torch.arange(-Fc, 0, device=device)[None].expand(B, Fc)

    @staticmethod
    def _context_times(state: ContextState, B: int, Fc: int, device) -> torch.Tensor:
        """(B, Fc) timesteps of the context tokens: 0 (clean) or each sample's context noise level."""
        if state.t is None:
            return torch.zeros(B, Fc, device=device)
        return state.t.to(device=device, dtype=torch.float32).reshape(B, 1).expand(B, Fc)

    def encode_text(self, prompts):
        tok, mask, pooled = self.text.encode(prompts, device=self.token_dirs.device)
        return self.text_kv(tok), mask, self.text_pool(pooled)

    # -- context and denoising ---------------------------------------------------------------------

    def encode_context(self, ctx, ctx_mask, ctx_ext, prompts, cache: bool | None = None,
                       ctx_t: torch.Tensor | None = None) -> ContextState:
        """Run the context once. ctx (B, Fc, C, h, w) latents, right-aligned: the newest context
        frame is ctx[:, -1] and must be valid; ctx_mask (B, Fc) bool; ctx_ext (B, Fc, 3, 4).
        ``ctx_t`` (B,): the flow time the context latents were noised to (context noise augmentation),
        given to the network as the context tokens' timestep; None = clean (0).
        ``cache=False`` skips the K/V cache (joint path, for tests); it defaults to context_self_only."""
        cache = self.cfg.dit.context_self_only if cache is None else cache
        if cache and not self.cfg.dit.context_self_only:
            raise ValueError("a context cache needs dit.context_self_only=True (context must not see targets)")
        B, Fc = ctx.shape[:2]
        if not bool(ctx_mask[:, -1].all()):
            raise ValueError("the newest context frame (index -1) must be valid for every sample")
        ref = ctx_ext[:, -1]
        text = self.encode_text(prompts)
        tokens = self.patch_in(self.patchify(ctx.to(self.dtype)))          # (B, Fc, N, D)
        cam = self.camera_features(ctx_ext, ref)
        tok_mask = ctx_mask.repeat_interleave(self.N, dim=1)
        newest = self.patchify(ctx[:, -1:].to(self.dtype)) if self.cond_in is not None else None
        state = ContextState(None, tok_mask, ctx_mask, tokens, cam, ref, text, ctx_t, newest)
        if not cache:
            return state  # joint attention: context is re-run with the targets at every step
        c = self.t_embed(self._context_times(state, B, Fc, ctx.device)) + text[2][:, None]
        m = self.ada(c).unflatten(-1, (12, -1))                            # (B, Fc, 12, D)
        rope_st, rope_s = self.rope_st(self.context_positions(B, Fc, ctx.device)), self.rope_spatial()
        x, kvs = tokens, []
        for blk in self.blocks:
            x, kv = blk(x, m, cam, rope_s, rope_st, text[0], text[1], ctx_mask)
            kvs.append(kv)
        state.kv = kvs
        return state

    def prepare_targets(self, tgt_ext, state: ContextState) -> TargetState:
        """Everything of the target frames that no denoising step changes (cached-context path)."""
        if state.kv is None:
            raise ValueError("prepare_targets needs a cached context (encode_context with cache=True)")
        B, Ft = tgt_ext.shape[:2]
        dev = tgt_ext.device
        cam = self.camera_features(tgt_ext, state.ref)
        tpos = torch.arange(Ft, device=dev)[None].expand(B, Ft)
        kmask = torch.cat([state.mask, torch.ones(B, Ft * self.N, dtype=torch.bool, device=dev)], 1)[:, None, None]
        bufs = []
        for k, v in state.kv:
            room = (B, k.shape[1], Ft * self.N, k.shape[3])
            bufs.append((torch.cat([k, k.new_empty(room)], 2), torch.cat([v, v.new_empty(room)], 2), kmask))
        return TargetState(cam, [blk.cam(cam) for blk in self.blocks], [blk.text_kv(state.text[0]) for blk in self.blocks],
                           self.rope_spatial(), self.rope_st(tpos), torch.ones(B, Ft, dtype=torch.bool, device=dev), bufs)

    def forward(self, zt, t, tgt_ext, state: ContextState, prep: TargetState | None = None):
        """Predict the flow velocity. zt (B, Ft, C, h, w) noisy target latents, t (B,) in [0, 1],
        tgt_ext (B, Ft, 3, 4) target cameras; prep: ``prepare_targets(tgt_ext, state)`` to reuse across
        sampler steps (same result, less work). Returns (B, Ft, C, h, w) in the weights' dtype."""
        B, Ft = zt.shape[:2]
        Fc = state.frame_mask.shape[1]
        text_tok, text_mask, pooled = state.text
        x = self.patch_in(self.patchify(zt.to(self.dtype)))                # (B, Ft, N, D)
        if self.cond_in is not None:                                       # newest context frame, per patch
            x = x + self.cond_in(state.newest)
        c = self.t_embed(t)[:, None].expand(B, Ft, -1) + pooled[:, None]  # (B, Ft, D)
        if state.kv is not None:  # cached context prefix
            p = self.prepare_targets(tgt_ext, state) if prep is None else prep
            m = self.ada(c).unflatten(-1, (12, -1))
            for blk, kv, cam_add, tkv, buf in zip(self.blocks, state.kv, p.cam_add, p.text_kv, p.kv_buf):
                x, _ = blk(x, m, p.cam, p.rope_s, p.rope_st, text_tok, text_mask, p.ones, prefix=kv,
                           prefix_mask=state.mask, cam_add=cam_add, text_kv=tkv, kv_buf=buf)
        else:  # joint: context and targets attend to each other
            cam = self.camera_features(tgt_ext, state.ref)
            tpos = torch.arange(Ft, device=zt.device)[None].expand(B, Ft)
            rope_s = self.rope_spatial()
            ones = torch.ones(B, Ft, dtype=torch.bool, device=zt.device)
            cpos = self.context_positions(B, Fc, zt.device)
            cc = self.t_embed(self._context_times(state, B, Fc, zt.device)) + pooled[:, None]
            x = torch.cat([state.tokens, x], 1)
            c = torch.cat([cc, c], 1)
            cam = torch.cat([state.cam, cam], 1)
            rope_st = self.rope_st(torch.cat([cpos, tpos], 1))
            fmask = torch.cat([state.frame_mask, ones], 1)
            attn = fmask.repeat_interleave(self.N, dim=1)[:, None, None, :]       # (B, 1, 1, L) valid keys
            if self.cfg.dit.context_self_only:  # context queries may not look at target keys
                is_ctx = torch.arange((Fc + Ft) * self.N, device=zt.device) < Fc * self.N
                attn = attn & ~(is_ctx[:, None] & ~is_ctx[None, :])[None, None]
            m = self.ada(c).unflatten(-1, (12, -1))
            for blk in self.blocks:
                x, _ = blk(x, m, cam, rope_s, rope_st, text_tok, text_mask, fmask, attn_mask=attn)
            x, c = x[:, Fc:], c[:, Fc:]
        shift, scale = self.final_ada(c).unsqueeze(2).chunk(2, -1)
        out = self.final(modulate(self.final_norm(x), shift, scale))       # (B, Ft, N, C*p*p)
        return self.unpatchify(out)
