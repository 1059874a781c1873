"""Configuration dataclasses and named presets for the world model.

One config object is passed whole; presets are small factories (``PRESETS[name]()``), as in DiT.
A checkpoint stores ``asdict(WorldModelConfig)`` as JSON next to its safetensors weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from camworld.geometry import DEFAULT_HFOV_DEG

# where the warp start reprojects (DiffusionConfig.warp_space); training builds its starts in the first two
WARP_SPACES = ("pixels", "latents", "mixed")


@dataclass
class VAEConfig:
    frame_size: int = 64               # square frames (H = W)
    latent_channels: int = 4           # C of the latent grid
    channels: tuple = (32, 64)         # conv widths; one x2 downsampling per entry -> 64 / 2**2 = 16
    # 16x16x4 rather than 8x8x16 (same 1,024 numbers): measured on 2 CPU cores, f4 reached 20.1 dB
    # held-out PSNR after 125 steps, f8 19.8 dB after 500 (runs/vae*/log.csv, BENCHMARKS.md)
    kl_weight: float = 1e-6            # tiny KL: a smooth latent space without blurring reconstructions

    @property
    def latent_size(self) -> int:
        return self.frame_size // 2 ** len(self.channels)


@dataclass
class DiTConfig:
    width: int = 192                   # D, token width
    depth: int = 8                     # number of blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    patch: int = 4                     # latent patch size; tokens per frame = (16 / 4)**2 = 16, 64 numbers each
    ray_embedding: bool = True         # per-token Pluecker ray MLP (DESIGN §7) on top of the per-frame [R|t] MLP
    context_self_only: bool = True     # context tokens attend only to context -> cacheable once per env step
    context_positions: str = "shared"  # context RoPE frame positions: "shared" (-1 for all) or "ranked" (-Fc..-1)
    translation_scale: float = 0.25    # metres -> network units for camera translations
    # DIAMOND/SVD-style shortcut: the newest context latent, patch by patch, is added to every target token
    # through its own zero-initialised projection (channel concatenation, for a linear patch embedding), so
    # fine detail of the frame the targets continue reaches them at full resolution instead of through
    # 16x16-pixel attention tokens. False = the shipped architecture.
    newest_concat: bool = False
    text_dim: int = 128                # text encoder width
    text_vocab: int = 4096             # hashed word vocabulary
    text_len: int = 24                 # max caption tokens
    text_layers: int = 1


@dataclass
class DiffusionConfig:
    sample_steps: int = 8              # Euler steps of the flow-matching sampler
    guidance: float = 1.0              # text CFG scale; 1.0 = no CFG (one forward per step)
    shift: float = 1.0                 # timestep shift of the sampling schedule (SD3); >1 spends more steps at high noise
    text_dropout: float = 0.1          # caption dropped during training (enables CFG)
    context_noise: float = 0.0         # inference: context latents noised to this flow time, the level given to the
    #                                    network as the context tokens' timestep (needs train.ctx_noise_max > 0)
    warp_start: float = 1.0            # inference: < 1 starts each sample at this flow time from a context frame
    #                                    (warp_source) reprojected to the target camera (camworld.model.warp); 1 = noise
    novel_start: float | None = None   # inference: flow time where the warp start's source did not look: those latent
    #                                    cells are generated from this higher noise while the seen ones are held at
    #                                    the warp until warp_start (inpainting by replacement); None: warp_start
    warp_depth: float = 6.0            # the warp's assumed depth (metres) where a ray does not meet the floor
    warp_source: str = "newest"        # the frame warped: "newest", or "nearest" (the context frame nearest the target)
    network_context: int | None = None  # inference: context frames the DiT sees, the newest and those nearest the
    #                                    targets (None or 0: all k); the warp start and the paste still use all k
    warp_fill: str = "border"          # what the warp start shows where its source frame did not look: "border"
    #                                    (its border pixels repeated), "smooth" (filled from the seen pixels around)
    #                                    "mirror" (the seen texture reflected across the nearest seen pixel)
    #                                    or "rows" (filled from the seen pixels of the same row)
    warp_space: str = "pixels"         # where the warp start reprojects: "pixels" (decoded frame, then the VAE
    #                                    encoder), "latents" (the frame's cached latents, no encode; under a
    #                                    learned depth each latent cell samples at its pixels' mean coordinates)
    #                                    or "mixed" (the first target's pixel warp encoded, its latents warped on)
    frames_per_pass: int | None = None  # inference: frames per sampling pass (None: train.target_frames)
    depth_net: str | None = None       # inference: a depth net's file beside the checkpoint (camworld.model.depth)
    #                                    whose depth the warp start and the paste use; None: the assumed depth
    refine_net: str | None = None      # inference: a refine net's file beside the checkpoint (camworld.model.refine)
    #                                    that repairs what no context frame saw; None: the network's pixels there
    warp_paste: bool = False           # inference: keep the context's reprojected pixels wherever a context camera saw
    #                                    the target pixel; the network's frame only elsewhere (camworld.model.warp)


@dataclass
class TrainConfig:
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    context_frames: int = 8            # max k during training (newest + k-1 retrieved), drawn per batch from 2..8
    target_frames: int = 2             # frames per generation pass (training and inference chunks)
    retrieval: str = "coverage"        # retrieval of the held-out eval batch (training mixes, data.TRAIN_STRATEGIES)
    recent_only_prob: float = 0.1      # paper: 10% of samples use only the most recent frame
    revisit_prob: float = 0.5          # fraction of trajectories that revisit (rotate/walk away and back)
    gap_prob: float = 0.5              # share of samples whose targets are 1..max_gap frames after the newest context
    max_gap: int = 8
    # context noise augmentation (GameNGen / DIAMOND-style): each sample's clean context latents are moved
    # to flow time sigma ~ U(0, ctx_noise_max) (z = (1 - sigma) z0 + sigma eps) and sigma is the context
    # tokens' timestep, so the network learns to read slightly wrong memories; 0 = off (the shipped recipe)
    ctx_noise_max: float = 0.0
    # rollout-aware training (self-generated context): in this share of samples with >= 2 context frames
    # the newest context latent is replaced by the network's own sample of it (``self_ctx_steps`` Euler
    # steps, no gradient) from the older context, so it learns to continue from frames it made itself,
    # as in a free rollout, where every frame it continues is its own; 0 = off (the shipped recipe)
    self_ctx_prob: float = 0.0
    self_ctx_steps: int = 4            # the shipped sampler's steps, so the frames are the env's kind
    # warp-start training (the inference task itself): in this share of samples the noised target is built from
    # the nearest context frame reprojected to the target camera (assumed depth, smooth fill) instead of from the
    # target, at a flow time ~ U(0.2, warp_train_t_max), and the network is asked for the velocity that lands on
    # the true target in one step; trained on noised ground truth only, it reads a smooth fill as a smooth world
    warp_train_prob: float = 0.0
    warp_train_t_max: float = 0.5
    # where that start is warped, as diffusion.warp_space at inference: "pixels" (the frame, then the encoder) or
    # "latents" (the context frame's latents warped at the latent's size: the start the faster sampler makes)
    warp_train_space: str = "pixels"
    # trajectories as the env drives them: a walk of random agent actions (forward, backward, strafe, turn,
    # noop in env step sizes, stopped at walls) replaces the smooth random walk in this share of samples
    action_walk_prob: float = 0.0
    exc_deg_per_frame: tuple = (4.0, 15.0)   # turn rate of rotate-away-and-back excursions (env allows <= 3.12)
    exc_max_m_per_frame: float = 1.0         # speed cap of walk-away excursions (m per model frame; env <= 0.31)
    trajectory_frames: int = 120       # model frames of the long trajectory a sample is cut from
    scenes: int = 1000                 # training scene seeds 0..scenes-1 (held-out: >= sim.EVAL_SEED_OFFSET)
    frame_stride: int = 4              # sim frames between consecutive model frames (30 fps / 4 = 7.5 fps)
    vae_steps: int = 3000
    vae_batch_size: int = 32
    vae_lr: float = 1e-3
    # adversarial decoder fine-tuning (camworld.train.adversarial; needs --freeze-encoder): a patch discriminator
    # trained beside the decoder, its hinge loss added at this weight relative to the reconstruction's gradient at
    # the decoder's last layer (VQGAN's adaptive rule) from step vae_adv_start on; 0 = off (the shipped recipe)
    vae_adv_weight: float = 0.0
    vae_adv_start: int = 0
    vae_disc_channels: int = 32
    vae_disc_lr: float = 2e-4
    # adversarial DiT fine-tuning (needs warp_train_prob > 0): on the warp-start samples a latent patch
    # discriminator judges the network's one-step prediction z_t - t v against the encoded target, its hinge loss
    # added at this weight relative to the flow loss's gradient at the DiT's last layer, from dit_adv_start on
    dit_adv_weight: float = 0.0
    dit_adv_start: int = 0
    dit_disc_channels: int = 64
    dit_disc_strides: tuple = (1, 2, 2)   # the latent discriminator's strides: (1, 2, 2) 4x4 logits, (1, 2, 1) 8x8
    # judge only where the warp start's frame did not look: each fake patch counts by the share of its pixels that
    # frame did not see (real patches all count), so the term pushes where the network must draw, not copy
    dit_adv_unseen: bool = False
    dit_disc_lr: float = 2e-4
    ema: float = 0.999


@dataclass
class WorldModelConfig:
    preset: str = "cpu"
    hfov_deg: float = DEFAULT_HFOV_DEG
    vae: VAEConfig = field(default_factory=VAEConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    latent_scale: float = 1.0          # latents are divided by this before diffusion (set after VAE training)

    @property
    def frame_size(self) -> int:
        return self.vae.frame_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WorldModelConfig":
        """Build from a JSON dict, rejecting unknown keys with a clear message."""
        sub = {"vae": VAEConfig, "dit": DiTConfig, "diffusion": DiffusionConfig, "train": TrainConfig}
        kw = {}
        known = {f.name for f in fields(cls)}
        for key, value in d.items():
            if key not in known:
                raise ValueError(f"unknown config key '{key}'; expected one of {sorted(known)}")
            if key in sub:
                sub_known = {f.name for f in fields(sub[key])}
                bad = set(value) - sub_known
                if bad:
                    raise ValueError(f"unknown {key} config keys {sorted(bad)}; expected {sorted(sub_known)}")
                value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                value = sub[key](**value)
            kw[key] = value
        return cls(**kw)


def tiny() -> WorldModelConfig:
    """For tests: seconds on a CPU."""
    return WorldModelConfig(
        preset="tiny",
        vae=VAEConfig(frame_size=32, latent_channels=4, channels=(8, 16)),
        dit=DiTConfig(width=32, depth=2, heads=2, patch=1, text_dim=16, text_vocab=256, text_len=8),
        diffusion=DiffusionConfig(sample_steps=2),
        train=TrainConfig(batch_size=4, context_frames=3, target_frames=2, trajectory_frames=60, scenes=8,
                          vae_steps=20, vae_batch_size=8, warmup=5),
    )


def cpu() -> WorldModelConfig:
    """The shipped default: trainable in hours on 2 cores, one env step well under 0.5 s."""
    return WorldModelConfig(preset="cpu")


def gpu() -> WorldModelConfig:
    """Larger, for an accelerator."""
    return WorldModelConfig(
        preset="gpu",
        vae=VAEConfig(channels=(64, 128), latent_channels=8),
        dit=DiTConfig(width=512, depth=12, heads=8, patch=2),
        diffusion=DiffusionConfig(sample_steps=16),
        train=TrainConfig(batch_size=64, context_frames=8, target_frames=4, vae_batch_size=64),
    )


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}


def preset(name: str) -> WorldModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose from {sorted(PRESETS)}")
    return PRESETS[name]()
