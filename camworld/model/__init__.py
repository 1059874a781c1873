"""The generator: frame VAE, Context-as-Memory DiT, flow-matching diffusion, offline text encoder."""

from camworld.model.config import PRESETS, DiffusionConfig, DiTConfig, TrainConfig, VAEConfig, WorldModelConfig, preset
from camworld.model.world_model import DEFAULT_CHECKPOINT, WorldModel, read_checkpoint, resolve_device

__all__ = ["PRESETS", "preset", "WorldModelConfig", "VAEConfig", "DiTConfig", "DiffusionConfig", "TrainConfig",
           "WorldModel", "DEFAULT_CHECKPOINT", "read_checkpoint", "resolve_device"]
