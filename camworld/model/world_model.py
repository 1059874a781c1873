"""WorldModel = VAE + DiT + config, and its checkpoint format (safetensors + JSON, never pickle).

A checkpoint is two files side by side: ``NAME.safetensors`` (weights; its metadata repeats the
config) and ``NAME.json`` (``{"format": "camworld-world-model", "version": 1, "config": {...},
"record": {...}}`` where record holds how it was trained and what it measured). Writes are atomic.
"""

from __future__ import annotations

import copy
import json
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from camworld.files import atomic_write, write_text
from camworld.model.config import WorldModelConfig
from camworld.model.diffusion import noise_context, sample, timesteps
from camworld.model.dit import DiT
from camworld.model.vae import VAE, frames_to_tensor, tensor_to_frames
from camworld.profile import section

FORMAT, VERSION = "camworld-world-model", 1
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default.safetensors"


def resolve_device(device="auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# "auto" on a CPU takes bfloat16 from this many worlds per batch on: below it the casts cost more than the
# faster matmuls save (measured, camworld bench env --samplers: N=1 4 steps float32 6.95 vs bfloat16 4.37
# env steps/s; N=16 13.68 vs 18.35; docs/benchmarks/env.md)
CPU_BF16_MIN_WORLDS = 8


def cpu_bf16_fast() -> bool:
    """True where this CPU multiplies bfloat16 in hardware: AMX tiles or AVX512-BF16 (torch.cpu's probes; False
    where this torch has neither probe)."""
    return any(bool(getattr(torch.cpu, name, lambda: False)())
               for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))


def inference_dtype(device, dtype="auto", num_worlds: int | None = None) -> torch.dtype:
    """The dtype the DiT runs in for sampling. ``"auto"``: bfloat16 where the hardware multiplies it fast
    (CUDA with bf16 support; CPUs with AMX tiles, where oneDNN runs bf16 matmuls ~4-10x faster than
    float32, or with AVX512-BF16 instructions, where a 16-world env step ran 1.5x faster than in float32
    (docs/benchmarks/env.md), for batches of at least ``CPU_BF16_MIN_WORLDS`` worlds), else float32.
    Latents and the Euler update stay float32 in every case; the VAE decoder follows the DiT's dtype."""
    if isinstance(dtype, torch.dtype):
        dt = dtype
    elif dtype in (None, "auto"):
        dev = torch.device(device)
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        big = num_worlds is None or int(num_worlds) >= CPU_BF16_MIN_WORLDS
        return torch.bfloat16 if dev.type == "cpu" and cpu_bf16_fast() and big else torch.float32
    elif dtype in DTYPES:
        dt = DTYPES[dtype]
    else:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
    if dt == torch.float16 and torch.device(device).type == "cpu":
        raise ValueError("float16 sampling is for CUDA; on CPU use 'bfloat16' or 'float32'")
    return dt


_CAST: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def cast_dit(dit: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The DiT in ``dtype`` for inference: itself if it already is, else one cached copy per (module, dtype),
    so many envs on one loaded model share the converted weights."""
    if dit.patch_in.weight.dtype == dtype:
        return dit
    return _cached_copy(dit, dtype, lambda m: m.to(dtype))


def cast_decoder(decoder: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The VAE decoder for inference in ``dtype``, channels-last (oneDNN's fast convolution layout): a cached
    copy, or the decoder itself for float32. Frames decoded in bfloat16 differ from float32 ones by ~56 dB PSNR."""
    if dtype == torch.float32:
        return decoder
    return _cached_copy(decoder, dtype, lambda m: m.to(dtype).to(memory_format=torch.channels_last))


def _cached_copy(module: nn.Module, dtype: torch.dtype, convert) -> nn.Module:
    copies = _CAST.setdefault(module, {})
    if dtype not in copies:
        copies[dtype] = convert(copy.deepcopy(module)).eval()
    return copies[dtype]


class WorldModel(nn.Module):
    """Frames <-> latents, and latent generation conditioned on retrieved context (Algorithm 2, lines 4-6)."""

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        self.vae = VAE(cfg.vae)
        self.dit = DiT(cfg)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_shape(self) -> tuple:
        return (self.cfg.vae.latent_channels, self.cfg.vae.latent_size, self.cfg.vae.latent_size)

    @torch.no_grad()
    def encode(self, frames, batch: int = 256) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> scaled latents (N, C, h, w) on the model's device."""
        x = frames_to_tensor(frames, self.device)
        if x.shape[-2:] != (self.cfg.frame_size, self.cfg.frame_size):
            raise ValueError(f"frames must be {self.cfg.frame_size}x{self.cfg.frame_size}, got {tuple(x.shape[-2:])}")
        out = [self.vae.encode(x[i:i + batch]) for i in range(0, len(x), batch)]
        return torch.cat(out) / self.cfg.latent_scale

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch: int = 256, decoder: nn.Module | None = None) -> np.ndarray:
        """Scaled latents (N, C, h, w) -> uint8 (N, H, W, 3). ``decoder``: e.g. ``cast_decoder(vae.decoder,
        torch.bfloat16)``; its input is cast to its dtype and layout."""
        if decoder is None:
            out = [self.vae.decode(z[i:i + batch] * self.cfg.latent_scale) for i in range(0, len(z), batch)]
        else:
            dt = next(decoder.parameters()).dtype
            out = [decoder((z[i:i + batch] * self.cfg.latent_scale).to(dt).contiguous(memory_format=torch.channels_last))
                   .float() for i in range(0, len(z), batch)]
        return tensor_to_frames(torch.cat(out))

    @torch.no_grad()
    def generate(self, ctx, ctx_mask, ctx_ext, tgt_ext, prompts, generator=None, steps=None, guidance=None,
                 noise=None, ctx_eps=None, context_noise=None, dit=None, start: float = 1.0, known=None,
                 known_mask=None, known_eps=None, known_until: float | None = None):
        """Sample target latents.

        ctx (B, Fc, C, h, w) scaled latents, right-aligned (newest last, always valid); ctx_mask (B, Fc)
        bool; ctx_ext (B, Fc, 3, 4) and tgt_ext (B, Ft, 3, 4) camera-to-world; prompts: list of B
        str/None; noise: optional initial noise (B, Ft, C, h, w), else drawn from ``generator``.
        context_noise: flow time the context latents are noised to, told to the network (default
        ``cfg.diffusion.context_noise``; 0 = clean context); ctx_eps: its noise (ctx's shape), else drawn.
        dit: the network to sample with (default ``self.dit``; e.g. a bfloat16 copy from ``cast_dit``).
        start: flow time the sampler starts at; below 1, ``noise`` is the partly noised start latent
        (``camworld.model.diffusion.sample``; warp initialisation, ``camworld.model.warp``).
        known, known_mask, known_eps, known_until: inpainting by replacement (``sample``'s): the known latents
        are held until flow time known_until, the rest generated from ``start``.
        Returns float32 latents (B, Ft, C, h, w).
        """
        d = self.cfg.diffusion
        dit = self.dit if dit is None else dit
        steps = d.sample_steps if steps is None else steps
        guidance = d.guidance if guidance is None else guidance
        level = d.context_noise if context_noise is None else float(context_noise)
        ctx_t = None
        if level > 0:
            ctx_t = torch.full((ctx.shape[0],), level, device=ctx.device)
            ctx = noise_context(ctx, ctx_mask, ctx_t, generator, eps=ctx_eps)
        # one network call (a warp start below the schedule's last knot, no CFG): the context and the targets in
        # one joint pass, the same numbers as caching the context's keys and values first (the context attends
        # to itself only), in half the layer calls
        calls = len(timesteps(steps, d.shift, start=start, through=known_until if known is not None else None)) - 1
        joint = calls == 1 and guidance == 1.0 and self.cfg.dit.context_self_only
        with section("context"):
            state = dit.encode_context(ctx, ctx_mask, ctx_ext, prompts, ctx_t=ctx_t, cache=False if joint else None)
            uncond = None
            if guidance != 1.0:
                uncond = dit.encode_context(ctx, ctx_mask, ctx_ext, [None] * len(prompts), ctx_t=ctx_t)
        B, Ft = tgt_ext.shape[:2]
        with section("denoise"):
            return sample(dit, (B, Ft) + self.latent_shape, tgt_ext, state, uncond, steps=steps,
                          guidance=guidance, shift=d.shift, generator=generator, device=self.device, noise=noise,
                          start=start, known=known, known_mask=known_mask, known_eps=known_eps,
                          known_until=known_until)

    # ---------------------------------------------------------------- checkpoints

    def save(self, path, record: dict | None = None, dtype=torch.float32):
        """Write NAME.safetensors + NAME.json atomically. ``dtype`` float16 halves the file size."""
        from safetensors.torch import save_file

        path = Path(path).with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg.to_dict()
        tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
                   for k, v in self.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(cfg)}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        doc = {"format": FORMAT, "version": VERSION, "config": cfg, "record": record or {}}
        write_text(path.with_suffix(".json"), json.dumps(doc, indent=2))
        return path

    @classmethod
    def load(cls, path=None, device="auto") -> "WorldModel":
        """Load and validate a checkpoint (path to .safetensors or .json; None = shipped default)."""
        cfg, tensors = read_checkpoint(path)
        model = cls(cfg)
        own = model.state_dict()
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise ValueError(f"checkpoint {path} does not match its config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}; was it written by another camworld version?")
        for k, v in tensors.items():
            if v.shape != own[k].shape:
                raise ValueError(f"checkpoint {path}: tensor '{k}' has shape {tuple(v.shape)}, "
                                 f"config expects {tuple(own[k].shape)}")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
        from camworld.model.frames import checkpoint_cameras

        model.trained_cameras = checkpoint_cameras(checkpoint_path(path))   # "planar" or "6dof" (its record)
        # a learned depth for the warp beside the checkpoint: the one its config names (used by default), else a
        # depth.safetensors there (used when asked: learned_depth=True); not a submodule, so the checkpoint's
        # tensors stay its own
        depth = checkpoint_path(path).parent / (cfg.diffusion.depth_net or "depth.safetensors")
        if cfg.diffusion.depth_net or depth.exists():
            from camworld.model.depth import load_depth_net

            object.__setattr__(model, "depth_net", load_depth_net(depth))
        # the refine net of what no camera saw (camworld.model.refine): the one its config names, else a
        # refine.safetensors beside it (used when asked: refine=True)
        rn = checkpoint_path(path).parent / (getattr(cfg.diffusion, "refine_net", None) or "refine.safetensors")
        if getattr(cfg.diffusion, "refine_net", None) or rn.exists():
            from camworld.model.refine import load_refine_net

            object.__setattr__(model, "refine_net", load_refine_net(rn))
        return model.to(resolve_device(device)).eval()


def checkpoint_path(path=None) -> Path:
    """The .safetensors file a checkpoint argument names: None = the shipped default, a .json = its
    tensors beside it, a folder = its default.safetensors."""
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if path.is_dir():
        path = path / "default.safetensors"
    return path


def read_checkpoint(path=None):
    """-> (WorldModelConfig, dict of tensors). Clear errors for missing, truncated or foreign files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = checkpoint_path(path)
    if not path.exists():
        hint = " (the shipped default is missing: reinstall camworld)" if path == DEFAULT_CHECKPOINT else ""
        raise FileNotFoundError(f"no world-model checkpoint at {path}{hint}")
    jpath = path.with_suffix(".json")
    if not jpath.exists():
        raise ValueError(f"checkpoint {path} has no config file {jpath.name} beside it")
    try:
        doc = json.loads(jpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"checkpoint config {jpath} is not valid JSON ({e}); the file is damaged") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{jpath} is not a camworld world-model config (format != '{FORMAT}')")
    if doc.get("version") != VERSION:
        raise ValueError(f"{jpath} has format version {doc.get('version')}, this camworld reads {VERSION}")
    cfg = WorldModelConfig.from_dict(doc["config"])
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"checkpoint weights {path} could not be read ({e}); the file is truncated or "
                         "not a safetensors file") from e
    return cfg, tensors
