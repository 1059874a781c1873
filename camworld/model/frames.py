"""The learned frame source of ``camworld.world.World``: latent cache, encode, sample, decode.

``World`` owns memory, clocks, the newest-frame rule and retrieval; for each step it hands this
source the retrieved context (memory indices per world) and the target poses, and gets back the
frames and the latents to cache in memory (generated frames keep the latents they were generated
as, so a frame is never encoded twice).

Cameras. The DiT conditions on camera-to-world [R|t], so any camera can be asked for: the context's
are the memory's stored extrinsics (planar frames: ``planar_to_extrinsics`` of their pose, as
appended), the targets' are given as (B, T, 3, 4) or derived from planar (B, T, 3) poses. What a
model was trained on is its ``cameras``: "planar" (the sim, every checkpoint without the field) or
"6dof", read from the checkpoint's record by ``checkpoint_cameras`` (``model.trained_cameras``);
``World`` lets a planar model generate only planar cameras.

Letters: B worlds stepped (active), T target frames, k context frames, C/h/w latent shape, S frame size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from camworld.geometry import planar_to_extrinsics
from camworld.profile import section
from camworld.model.config import WARP_SPACES
from camworld.model.warp import FILLS, nearest_sources
from camworld.model.world_model import (WorldModel, _cached_copy, cast_decoder, cast_dit, inference_dtype,
                                        resolve_device)


def _channels_last(encoder, dtype: torch.dtype = torch.float32):
    """One cached channels-last copy of a VAE encoder in ``dtype`` (warp-start encodes run through it, in the
    sampler's dtype: at 16 worlds in bfloat16 the warp start took 40-48 ms per env step against 56-73 in float32,
    docs/benchmarks/env.md; the fidelity figures moved by at most 0.07 dB)."""
    key = "channels_last" if dtype == torch.float32 else ("channels_last", dtype)
    return _cached_copy(encoder, key, lambda m: m.to(dtype).to(memory_format=torch.channels_last))


CAMERA_KINDS = ("planar", "6dof")
DEPTH_CACHE = 2048   # learned depths kept per memory bank (float16 at the net's side: 2 KB each at 32x32)
DEPTH_BATCH = 256    # frames per depth-net call
WARP_SOURCES = ("newest", "nearest", "paste")


def network_slots(ctx_ext: np.ndarray, mask: np.ndarray, tgt_ext: np.ndarray, n: int) -> np.ndarray:
    """Which n of the k context slots (B, k) the network sees: the newest (slot k - 1) and the n - 1 valid ones
    whose cameras are nearest any target camera (``camera_distance``), in slot order, so the context stays
    right-aligned; padded slots only where fewer than n are valid. ctx_ext (B, k, 3, 4), mask (B, k) bool,
    tgt_ext (B, T, 3, 4) -> int (B, n)."""
    from camworld.model.warp import camera_distance

    d = camera_distance(np.asarray(ctx_ext)[:, :, None], np.asarray(tgt_ext)[:, None]).min(-1)   # (B, k)
    d = np.where(np.asarray(mask, bool), d, np.inf)
    d[:, -1] = -np.inf
    return np.sort(np.argsort(d, axis=1, kind="stable")[:, :n], axis=1)


def checkpoint_cameras(path) -> str:
    """The cameras a checkpoint's DiT was trained on: "planar" or "6dof".

    Read from its JSON's training record: ``record["cameras"]``, else that of the DiT stage it was
    exported from (``record["dit"]``, followed down); a record without the field is "planar" (trained
    on the sim, as every checkpoint before recorded training). Training on recorded videos writes
    "6dof" when any video's cameras are not planar (``camworld.recorded.is_planar``)."""
    from camworld.model.world_model import DEFAULT_CHECKPOINT

    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    jpath = path.with_suffix(".json")
    try:
        rec = json.loads(jpath.read_text()).get("record") or {}
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"checkpoint config {jpath} could not be read ({e})") from None
    while isinstance(rec, dict) and "cameras" not in rec and isinstance(rec.get("dit"), dict):
        rec = rec["dit"]
    kind = rec.get("cameras", "planar") if isinstance(rec, dict) else "planar"
    if kind not in CAMERA_KINDS:
        raise ValueError(f"{jpath}: record cameras = {kind!r}, expected one of {CAMERA_KINDS}")
    return kind


class ModelFrames:
    """A ``WorldModel`` as a frame source: one batched sampling pass for every active world."""

    name = "model"

    def __init__(self, model: WorldModel, device="auto", sample_steps: int | None = None,
                 guidance: float | None = None, context_noise: float | None = None, dtype="auto",
                 frames_per_pass: int | None = None, num_worlds: int | None = None,
                 warp_start: float | None = None, warp_depth: float | None = None, warp_source: str | None = None,
                 warp_paste: bool | None = None, learned_depth: bool | None = None, warp_space: str | None = None,
                 warp_fill: str | None = None, network_context: int | None = None,
                 novel_start: float | None = None, refine: bool | None = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        # the DiT's sampling dtype (model.world_model.inference_dtype; "auto" looks at the batch: num_worlds)
        self.dtype = inference_dtype(self.device, dtype, num_worlds)
        self.dit = cast_dit(self.model.dit, self.dtype)
        self.decoder = cast_decoder(self.model.vae.decoder, self.dtype)
        self.sample_steps, self.guidance = sample_steps, guidance
        # flow time the context latents are noised to before each pass (model default: its config's)
        self.context_noise = float(model.cfg.diffusion.context_noise if context_noise is None else context_noise)
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")
        S = self.cfg.frame_size
        self.frame_size = (S, S)
        self.frame_stride = int(self.cfg.train.frame_stride)
        # frames per sampling pass: the checkpoint's inference setting, else its training target length
        # (each pass retrieves anew)
        if frames_per_pass is None:
            frames_per_pass = self.cfg.diffusion.frames_per_pass or self.cfg.train.target_frames
        self.frames_per_pass = int(frames_per_pass)
        if self.frames_per_pass < 1:
            raise ValueError(f"frames_per_pass must be >= 1, got {frames_per_pass}")
        # warp initialisation (camworld.model.warp): start flow time (1 = off) and assumed depth
        d = model.cfg.diffusion
        self.warp_start = float(d.warp_start if warp_start is None else warp_start)
        self.warp_depth = float(d.warp_depth if warp_depth is None else warp_depth)
        if not 0.0 < self.warp_start <= 1.0:
            raise ValueError(f"warp_start must be in (0, 1] (1 = no warp), got {self.warp_start}")
        if not self.warp_depth > 0:
            raise ValueError(f"warp_depth must be > 0 metres, got {self.warp_depth}")
        # flow time the sampler starts at where the warp start's source frame did not see the target (latent cells
        # not wholly seen): the seen cells are held at the warp (re-noised at each time) until warp_start, the rest
        # generated from this higher noise (inpainting by replacement, ``camworld.model.diffusion.sample``);
        # = warp_start: the plain SDEdit start everywhere
        ns = getattr(d, "novel_start", None) if novel_start is None else novel_start
        self.novel_start = self.warp_start if ns is None else float(ns)
        if not self.warp_start <= self.novel_start <= 1.0:
            raise ValueError(f"novel_start must be in [warp_start = {self.warp_start:g}, 1], got {self.novel_start}")
        # which frame is warped: the newest, or the context frame nearest each target camera (a revisit
        # warps the frame seen there)
        self.warp_source = str(d.warp_source if warp_source is None else warp_source)
        if self.warp_source not in WARP_SOURCES:
            raise ValueError(f"warp_source must be one of {WARP_SOURCES}, got {self.warp_source!r}")
        # where the start is reprojected: the decoded frame then encoded ("pixels"), or its latents ("latents": at
        # 1/4 the resolution, without the encoder's cost)
        self.warp_space = str(getattr(d, "warp_space", "pixels") if warp_space is None else warp_space)
        if self.warp_space not in WARP_SPACES:
            raise ValueError(f"warp_space must be one of {WARP_SPACES}, got {self.warp_space!r}")
        # context frames the network sees (0: all k); the warp start and the paste use all of them
        nc = getattr(d, "network_context", None) if network_context is None else network_context
        if isinstance(nc, bool) or not isinstance(nc, (int, np.integer, type(None))) or (nc is not None and nc < 0):
            raise ValueError(f"network_context must be an int >= 0 (0: all context frames), got {nc!r}")
        self.network_context = int(nc or 0)
        # what the start shows where its source frame did not look (camworld.model.warp.FILLS)
        self.warp_fill = str(getattr(d, "warp_fill", "border") if warp_fill is None else warp_fill)
        if self.warp_fill not in FILLS:
            raise ValueError(f"warp_fill must be one of {FILLS}, got {self.warp_fill!r}")
        # paste the context's own pixels where a context camera saw the target (camworld.model.warp.reproject)
        if not isinstance(warp_paste, (bool, type(None), np.bool_)):
            raise ValueError(f"warp_paste must be True or False, got {warp_paste!r}")
        self.warp_paste = bool(d.warp_paste if warp_paste is None else warp_paste)
        # the warp's depth from the model's depth net (camworld.model.depth; model.depth_net, loaded with the
        # checkpoint), else the assumed floor / plane; default: on when the checkpoint's config names the net
        net = getattr(model, "depth_net", None)
        if learned_depth and net is None:
            raise ValueError("learned_depth=True needs a model with a depth net (a depth.safetensors beside its "
                             "checkpoint, or the one its diffusion.depth_net names)")
        self.learned_depth = bool(bool(d.depth_net) and net is not None if learned_depth is None else learned_depth)
        self.depth_net = net.to(self.device).eval() if self.learned_depth else None
        if self.depth_net is not None and S % self.depth_net.size:
            raise ValueError(f"the depth net runs at {self.depth_net.size}x{self.depth_net.size}, which does not "
                             f"divide this model's {S}x{S} frames")
        # what no context camera saw, repaired by the model's refine net (camworld.model.refine; model.refine_net,
        # loaded with the checkpoint when its config names one); default: on when the config names it
        rnet = getattr(model, "refine_net", None)
        if refine and rnet is None:
            raise ValueError("refine=True needs a model with a refine net (the file its diffusion.refine_net names)")
        self.refine = bool(bool(getattr(d, "refine_net", None)) and rnet is not None if refine is None else refine)
        self.refine_net = rnet.to(self.device).eval() if self.refine else None
        if sample_steps is not None and int(sample_steps) < 1:
            raise ValueError(f"sample_steps must be >= 1, got {sample_steps}")
        self.gens: dict = {}           # world -> torch.Generator (sampling noise)
        # record_parts: keep the last pass's parts in ``last_parts`` (the refine stage's training data, tests)
        self.record_parts, self.last_parts = False, None

    @property
    def cameras(self) -> str:
        """ "planar" or "6dof": what the model was trained on, ``model.trained_cameras`` (set from the
        checkpoint's record by ``camworld.world.load_world_model``); "planar" when unset."""
        kind = getattr(self.model, "trained_cameras", "planar")
        if kind not in CAMERA_KINDS:
            raise ValueError(f"model.trained_cameras must be one of {CAMERA_KINDS}, got {kind!r}")
        return kind

    def reset(self, i: int, seed: int, scene=None):
        self.gens[i] = torch.Generator(device=self.device).manual_seed(int(seed))

    @torch.no_grad()
    def make_frames(self, worlds, banks, context, targets: np.ndarray, prompts) -> tuple:
        """worlds: B world indices; banks: their MemoryBanks; context: B int64 index arrays (oldest
        first); targets (B, T, 3) planar poses or (B, T, 3, 4) camera-to-world extrinsics.
        -> (uint8 (B, T, S, S, 3), float32 latents (B, T, C, h, w))."""
        B, T = targets.shape[:2]
        S = self.cfg.frame_size
        k = max(len(ix) for ix in context)
        C, h, w = self.model.latent_shape
        ctx = torch.zeros(B, k, C, h, w, device=self.device)
        mask = torch.zeros(B, k, dtype=torch.bool, device=self.device)
        cext = np.zeros((B, k, 3, 4), np.float32)
        for b, (bank, idx) in enumerate(zip(banks, context)):
            n = len(idx)                                   # right-aligned: newest last, padding first
            with section("encode"):                        # cached latents; frames never encoded are encoded
                ctx[b, k - n:] = self._latents(bank, idx)
            mask[b, k - n:] = True
            e = bank.extrinsics(idx)                       # (n, 3, 4) as stored
            cext[b, k - n:] = e
            cext[b, : k - n] = e[-1]
        tgt = targets if targets.ndim == 4 else planar_to_extrinsics(targets)     # (B, T, 3, 4)
        tgt = torch.as_tensor(tgt, dtype=torch.float32, device=self.device)
        mask_np, tgt_np = mask.cpu().numpy(), tgt.cpu().numpy()   # the geometry's inputs (warp, network, paste)
        noise = torch.stack([torch.randn((T, C, h, w), generator=self.gens[i], device=self.device) for i in worlds])
        ctx_eps = None
        if self.context_noise > 0:  # each world's own generator: a world's frames never depend on the others
            ctx_eps = torch.stack([torch.randn((k, C, h, w), generator=self.gens[i], device=self.device)
                                   for i in worlds])
        src_pts = None  # learned depth: the context frames' pixels in the world, each at its own depth
        if self.depth_net is not None and (self.warp_start < 1.0 or self.warp_paste):
            with section("depth"):
                src_pts = self._source_points(banks, context, cext)
        inpaint, pasted = {}, None
        if (self.warp_start < 1.0 and self.warp_source == "paste") or self.record_parts or self.refine_net is not None:
            # the paste's composite, computed once (the start, the refine net and the paste share it)
            with section("paste"):
                pasted = self._reproject(banks, context, cext, mask_np, tgt_np, src_pts, fallback=True)
        if self.warp_start < 1.0:     # start from context frames reprojected to each target camera
            with section("warp"):
                if self.warp_source == "paste":
                    start, hit = self._encoded_start(pasted[0], pasted[2]), pasted[1]
                else:
                    start, hit = self._warped_latents(banks, context, cext, mask_np, tgt_np, ctx, src_pts, seen=True)
                s0 = self.warp_start
                if self.novel_start > self.warp_start:   # made-up cells from higher noise, seen ones held
                    cell = hit.shape[-1] // h
                    seen = torch.nn.functional.avg_pool2d(hit.flatten(0, 1)[:, None].float(), cell)
                    inpaint = dict(known=start, known_mask=(seen > 1 - 1e-6).float().reshape(B, T, 1, h, w),
                                   known_eps=noise, known_until=self.warp_start)
                    s0 = self.novel_start
                noise = s0 * noise + (1 - s0) * start
        net_ctx, net_mask, net_ext = ctx, mask, cext
        if 0 < self.network_context < k:   # the network sees the newest and the frames nearest the targets
            keep = network_slots(cext, mask_np, tgt_np, self.network_context)
            bi, kk = torch.arange(B, device=self.device)[:, None], torch.as_tensor(keep, device=self.device)
            net_ctx, net_mask = ctx[bi, kk], mask[bi, kk]
            net_ext = np.take_along_axis(cext, keep[:, :, None, None], axis=1)
            if ctx_eps is not None:
                ctx_eps = ctx_eps[bi, kk]
        z = self.model.generate(net_ctx, net_mask, torch.as_tensor(net_ext, device=self.device), tgt, list(prompts),
                                steps=self.sample_steps, guidance=self.guidance, noise=noise, ctx_eps=ctx_eps,
                                context_noise=self.context_noise, dit=self.dit,
                                start=self.novel_start if inpaint else self.warp_start, **inpaint)  # (B, T, C, h, w)
        with section("decode"):
            frames = self.model.decode(z.flatten(0, 1), decoder=self.decoder).reshape(B, T, S, S, 3)
            lat = z.float().cpu().numpy()
        if pasted is not None and (self.record_parts or self.refine_net is not None):
            fill = self._filled_composite(pasted[0], pasted[2])
            if self.record_parts:
                from camworld.model.vae import tensor_to_frames

                self.last_parts = {"decoded": frames.copy(), "composite": tensor_to_frames(fill),
                                   "seen": pasted[1].cpu().numpy(), "filled": pasted[2].cpu().numpy()}
            if self.refine_net is not None:   # what no camera saw: the refine net's repair of the network's pixels
                with section("refine"):
                    frames = self._refine(frames, fill, pasted[1], pasted[2])
        if self.warp_paste:            # the network's pixels only where no context camera saw the target's
            with section("paste"):
                px, seen = (pasted or self._reproject(banks, context, cext, mask_np, tgt_np, src_pts))[:2]
                frames = self._composite(frames, px, seen)
        return frames, lat             # latents stay the network's (re-encoding the pasted frames gained nothing)

    def _paste(self, frames: np.ndarray, banks, context, cext: np.ndarray, mask: np.ndarray, tgt_ext: np.ndarray,
               src_pts=None) -> np.ndarray:
        """uint8 (B, T, S, S, 3) generated frames with the context's reprojected pixels pasted in (``_reproject``)."""
        return self._composite(frames, *self._reproject(banks, context, cext, mask, tgt_ext, src_pts))

    def _composite(self, frames: np.ndarray, px: torch.Tensor, seen: torch.Tensor) -> np.ndarray:
        """uint8 frames (B, T, S, S, 3) showing the reprojected pixels px (B, T, 3, S, S) wherever seen (B, T, S, S)."""
        from camworld.model.vae import frames_to_tensor, tensor_to_frames

        return tensor_to_frames(torch.where(seen[:, :, None], px, frames_to_tensor(frames, self.device)))

    def _reproject(self, banks, context, cext: np.ndarray, mask: np.ndarray, tgt_ext: np.ndarray, src_pts=None,
                   fallback: bool = False):
        """The context's pixels reprojected to the target cameras, each target pixel from the best context frame
        that saw it (``camworld.model.warp.reproject``; ``src_pts``: ``_source_points``' under a learned depth)
        -> (float (B, T, 3, S, S) in [-1, 1], seen bool (B, T, S, S)); ``fallback``: and what is unseen filled
        from the best frame at the assumed depth, with the mask of what holds pixels (``reproject``'s)."""
        from camworld.model.vae import frames_to_tensor
        from camworld.model.warp import reproject

        B, k = mask.shape
        S = self.cfg.frame_size
        src = np.zeros((B, k, S, S, 3), np.uint8)
        observed = np.zeros((B, k), bool)
        for b, (bank, idx) in enumerate(zip(banks, context)):
            src[b, k - len(idx):] = bank.frames(idx)
            observed[b, k - len(idx):] = bank.observed[idx]
        return reproject(frames_to_tensor(src, self.device), cext, mask, observed, tgt_ext, self.cfg.hfov_deg,
                         self.warp_depth, floor=self.cameras == "planar", src_points=src_pts, fallback=fallback)

    def _encoded_start(self, px: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """``warp_source="paste"``: the paste's composite px (B, T, 3, S, S) (with its fallback) as the warp start,
        filled where it holds no pixel (seen (B, T, S, S) False; ``warp_fill``: "smooth" from the pixels around,
        "border" the composite's zeros, mid grey) -> scaled latents (B, T, C, h, w)."""
        return self._encode_warp(self._filled_composite(px, seen, self.warp_fill))

    @staticmethod
    def _filled_composite(px: torch.Tensor, filled: torch.Tensor, fill: str = "smooth") -> torch.Tensor:
        """The composite (B, T, 3, S, S) filled where it holds no pixel (filled (B, T, S, S) False) as ``fill``
        says (``camworld.model.warp.fill_holes``)."""
        from camworld.model.warp import fill_holes

        return fill_holes(px.flatten(0, 1), filled.flatten(0, 1)[:, None].to(px.dtype), fill).reshape(px.shape)

    def _refine(self, frames: np.ndarray, fill: torch.Tensor, seen: torch.Tensor, filled: torch.Tensor) -> np.ndarray:
        """uint8 (B, T, S, S, 3) decoded frames repaired by the refine net (``camworld.model.refine``) from the
        filled composite and its masks; the pixels a context frame saw are pasted over it afterwards."""
        from camworld.model.refine import refine
        from camworld.model.vae import frames_to_tensor, tensor_to_frames

        out = refine(self._refine_cast(), frames_to_tensor(frames, self.device).flatten(0, 1), fill.flatten(0, 1),
                     seen.flatten(0, 1), filled.flatten(0, 1))
        return tensor_to_frames(out.float()).reshape(frames.shape)

    def _refine_cast(self):
        if self.dtype == torch.float32:
            return self.refine_net
        return _cached_copy(self.refine_net, self.dtype,
                            lambda m: m.to(self.dtype).to(memory_format=torch.channels_last))

    def _warped_latents(self, banks, context, cext: np.ndarray, mask: np.ndarray, tgt_ext: np.ndarray,
                        ctx: torch.Tensor, src_pts=None, seen: bool = False):
        """Scaled latents (B, T, C, h, w) of the context reprojected to the target cameras (B, T, 3, 4):
        ``warp_source`` "newest" warps the newest frame, "nearest" the context frame nearest each target;
        ``warp_space`` "pixels" warps its frame and encodes the warp, "latents" warps its cached latents
        (ctx (B, k, C, h, w), right-aligned as ``cext``), "mixed" encodes the first target's pixel warp and warps
        those latents on to the later targets (one encode per world and pass, and the pasted frame still seeds
        each step). ``src_pts``: ``_source_points``' under a learned depth: each source frame warped at its own
        depth (in latent space, at the mean of each cell's pixels). ``seen``: also return bool (B, T, S, S),
        where the warp's source saw the target pixel (a latent warp: where it saw the whole cell)."""
        from camworld.model.warp import warp_frames

        B, T = tgt_ext.shape[:2]
        k = mask.shape[1]
        slot = nearest_sources(cext, mask, tgt_ext) if self.warp_source == "nearest" else np.full((B, T), k - 1)
        src_ext = np.take_along_axis(cext, slot[:, :, None, None], axis=1)              # (B, T, 3, 4)
        if self.warp_space == "mixed" and T > 1:
            return self._mixed_start(banks, context, slot[:, :1], src_ext[:, :1], tgt_ext, src_pts, seen)
        X = None if src_pts is None else self._target_points(src_pts[np.arange(B)[:, None], slot], tgt_ext)
        if self.warp_space == "latents":  # the source's cached latents, warped at the latent's size: no encoder
            src = ctx[torch.arange(B, device=ctx.device)[:, None], torch.as_tensor(slot, device=ctx.device)]
            out = warp_frames(src.float(), src_ext, tgt_ext, self.cfg.hfov_deg, self.warp_depth,
                              floor=self.cameras == "planar", fill=self.warp_fill, seen=True, points=X)
            return (out[0], self._cells_to_pixels(out[1])) if seen else out[0]
        z, hit = self._pixel_start(banks, context, slot, src_ext, tgt_ext, X)
        return (z, hit) if seen else z

    def _target_points(self, src_points: torch.Tensor, tgt_ext: np.ndarray) -> torch.Tensor:
        """Learned depth: the scene points (B, T, S*S, 3) the target cameras' pixels see on their source frames
        (src_points (B, T, n, 3), each target's source lifted at its own depth); where the source did not see a
        target pixel the assumed depth's point: a start without content there (the fill of nothing) made the
        network draw uniform frames, and a memory of them (pose drives, 2 of 16 episodes at 7 dB)."""
        from camworld.model.warp import _scene_points, depth_points, own_depth

        S = self.cfg.frame_size
        tg = torch.as_tensor(tgt_ext, dtype=torch.float64)
        z, known = own_depth(src_points, tg.float(), S, self.cfg.hfov_deg)                  # (B, T, N)
        return depth_points(tg, z.double(), known, _scene_points(tg, S, self.cfg.hfov_deg, self.warp_depth,
                                                                 self.cameras == "planar"), self.cfg.hfov_deg)

    def _pixel_start(self, banks, context, slot: np.ndarray, src_ext: np.ndarray, tgt_ext: np.ndarray, X=None):
        """The pixel warp start: each target's source frame (slot (B, T) into the context) warped to it (at the
        points X under a learned depth, else the assumed depth) and encoded -> (latents (B, T, C, h, w), seen
        bool (B, T, S, S))."""
        from camworld.model.vae import frames_to_tensor
        from camworld.model.warp import warp_frames

        k = max(len(idx) for idx in context)
        src = np.stack([bank.frames(idx[slot[b] - (k - len(idx))])
                        for b, (bank, idx) in enumerate(zip(banks, context))])            # (B, T, S, S, 3)
        src = frames_to_tensor(src, self.device)
        if X is None:   # the sim's ground plane; recorded worlds: depth alone
            w, hit = warp_frames(src, src_ext, tgt_ext, self.cfg.hfov_deg, self.warp_depth,
                                 floor=self.cameras == "planar", fill=self.warp_fill, seen=True)
        else:
            w, hit = warp_frames(src, src_ext, tgt_ext, self.cfg.hfov_deg, points=X, fill=self.warp_fill, seen=True)
        return self._encode_warp(w), hit

    def _mixed_start(self, banks, context, slot1: np.ndarray, src1_ext: np.ndarray, tgt_ext: np.ndarray, src_pts,
                     seen: bool):
        """``warp_space="mixed"``: the first target's pixel warp start, encoded, then its latents warped on to the
        later targets (at the first target's own points under a learned depth). -> as ``_warped_latents``."""
        from camworld.model.warp import warp_frames

        B, T = tgt_ext.shape[:2]
        X1 = None if src_pts is None else self._target_points(src_pts[np.arange(B)[:, None], slot1], tgt_ext[:, :1])
        z1, hit1 = self._pixel_start(banks, context, slot1, src1_ext, tgt_ext[:, :1], X1)
        rest, first = tgt_ext[:, 1:], np.repeat(tgt_ext[:, :1], T - 1, axis=1)         # (B, T-1, 3, 4)
        src = z1.expand(B, T - 1, *z1.shape[2:])
        if X1 is None:
            zr, hr = warp_frames(src, first, rest, self.cfg.hfov_deg, self.warp_depth,
                                 floor=self.cameras == "planar", fill=self.warp_fill, seen=True)
        else:
            Xr = self._target_points(X1.float().expand(B, T - 1, *X1.shape[2:]), rest)
            zr, hr = warp_frames(src, first, rest, self.cfg.hfov_deg, points=Xr, fill=self.warp_fill, seen=True)
        z = torch.cat([z1, zr], 1)
        return (z, torch.cat([hit1, self._cells_to_pixels(hr)], 1)) if seen else z

    def _cells_to_pixels(self, hit: torch.Tensor) -> torch.Tensor:
        """A latent-cell mask (B, T, h, w) -> the frame's pixels (B, T, S, S)."""
        c = self.cfg.frame_size // hit.shape[-1]
        return hit.repeat_interleave(c, -2).repeat_interleave(c, -1)

    def _encode_warp(self, w: torch.Tensor) -> torch.Tensor:
        """Warped frames float (B, T, 3, S, S) in [-1, 1] -> scaled latents (B, T, C, h, w), encoded in the
        sampler's dtype."""
        B, T = w.shape[:2]
        enc = _channels_last(self.model.vae.encoder, self.dtype)   # oneDNN's fast layout: 1.2-1.5x
        mean = enc(w.flatten(0, 1).to(self.dtype).contiguous(memory_format=torch.channels_last)).chunk(2, dim=1)[0]
        z = mean.float().contiguous() / self.cfg.latent_scale
        return z.reshape((B, T) + tuple(z.shape[1:])).float()

    def _source_points(self, banks, context, cext: np.ndarray) -> torch.Tensor:
        """Under a learned depth: the context frames' pixels lifted to the world at their own depth (``_depths``)
        -> float32 (B, k, s*s, 3) (``camworld.model.warp.source_points``), right-aligned as ``cext``. The warp
        start and the paste reproject each frame with it (``own_depth``), so what a frame looks like from a
        camera depends on the frame and the camera alone, and a return reprojects memory as the first visit did."""
        from camworld.model.warp import source_points

        B, k = cext.shape[:2]
        s = self.depth_net.size
        z = np.zeros((B, k, s * s), np.float32)
        for b, (idx, zb) in enumerate(zip(context, self._depths(banks, context))):
            z[b, k - len(idx):] = zb
            z[b, : k - len(idx)] = z[b, k - 1]            # padding: never used (the mask), any finite depth
        return source_points(torch.as_tensor(cext, dtype=torch.float32), torch.from_numpy(z), s, self.cfg.hfov_deg)

    def _depths(self, banks, context) -> list:
        """The depth net's z-depth float32 (n, s*s) of each world's memory frames (context: index arrays) at its
        size s (``depth_of``), cached per frame in its bank (``MemoryBank.derived``, at most DEPTH_CACHE frames):
        a frame's depth is computed once while cached, and the frames no bank has yet go through the net in one
        batch (a bank shared by several worlds counts once)."""
        caches = [bank.derived.setdefault("depth", {}) for bank in banks]
        need: dict = {}                                   # id(bank) -> (bank, cache, [indices])
        for bank, cache, idx in zip(banks, caches, context):
            todo = need.setdefault(id(bank), (bank, cache, set()))[2]
            todo.update(int(i) for i in idx if int(i) not in cache)
        need = [(bank, cache, sorted(todo)) for bank, cache, todo in need.values() if todo]
        if need:
            from camworld.model.depth import depth_of
            from camworld.model.vae import frames_to_tensor

            frames = np.concatenate([bank.frames(np.asarray(todo, np.int64)) for bank, _, todo in need])
            net = self.depth_net if self.dtype == torch.float32 else _cached_copy(
                self.depth_net, self.dtype, lambda m: m.to(self.dtype).to(memory_format=torch.channels_last))
            out = []
            with torch.no_grad():
                for a in range(0, len(frames), DEPTH_BATCH):
                    x = frames_to_tensor(frames[a:a + DEPTH_BATCH], self.device).to(self.dtype)
                    if self.dtype != torch.float32:
                        x = x.contiguous(memory_format=torch.channels_last)
                    out.append(depth_of(net, x).float().reshape(len(x), -1).cpu().numpy().astype(np.float16))
            z, at = np.concatenate(out), 0
            for bank, cache, todo in need:
                cache.update(zip(todo, z[at:at + len(todo)]))
                at += len(todo)
        res = [np.stack([cache[int(i)] for i in idx]).astype(np.float32) for cache, idx in zip(caches, context)]
        for cache in caches:
            while len(cache) > DEPTH_CACHE:              # the oldest cached first (dicts keep insertion order)
                cache.pop(next(iter(cache)))
        return res

    def _latents(self, bank, idx: np.ndarray) -> torch.Tensor:
        """Cached latents for memory indices, encoding (once) the frames that have none yet."""
        lat, have = bank.get_latents(idx)
        if not have.all():
            miss = idx[~have]
            bank.set_latents(miss, self.model.encode(bank.frames(miss)).float().cpu().numpy())
            lat, have = bank.get_latents(idx)
        return torch.as_tensor(np.asarray(lat), dtype=torch.float32, device=self.device)
