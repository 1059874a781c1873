"""Save and load explored worlds: memory, clocks, prompts, retrieval settings and RNG state.

    from camworld.world_io import save_world, load_world
    save_world(world, "kitchen.world", extra={"scene_seed": 1000003})
    world, extra = load_world("kitchen.world", model)       # explore it again: it still remembers

A saved world is one folder:

* ``memory-<j>-<token>.npz``: the memory banks (``MemoryBank.save``: frames, planar poses and full
  camera-to-world extrinsics, times, source tags and cached latents; an ``.npz``-compatible zip, no
  pickle). One bank for a shared world
  (``World(shared_memory=True)``), else one per world.
* ``world.json``: the manifest: format and version, the model's frame size, latent shape and a
  SHA-256 of its VAE weights (cached latents are only valid for that VAE), the World's settings
  (number of worlds, shared memory, retrieval strategy, context size, sampler overrides, memory
  capacity), every camera's prompt, newest-frame index, last retrieved indices, retrieval RNG
  (``numpy.random.Generator.bit_generator.state`` as JSON) and sampling RNG
  (``torch.Generator.get_state()``, uint8, base64), the banks' clocks, the bank file names and the
  caller's ``extra`` dict (JSON).

Atomic and safe. Banks are written under fresh names first; the manifest is written to a temp file,
fsynced and moved over ``world.json`` with ``os.replace``: that is the commit. A failed or
interrupted save leaves the previous save complete (its manifest still names its own banks); old
banks are deleted only after the commit. Loading checks format, version and model compatibility and
names the file at fault when something is truncated or foreign. Nothing is unpickled.

Versions. Format 2 (this one) writes MemoryBank files of version 2, which carry every frame's full
extrinsics; format 1 worlds (banks of planar poses only, their extrinsics derived at eye height)
still load, unchanged in every other respect. A camworld that reads only format 1 refuses a format 2
world at its manifest, naming the version.

Same seed, same frames: after ``load_world`` the next ``step`` with the same poses generates the
frames the original world would have generated (same device type; across CPU/CUDA the sampling
RNG cannot be carried over and a warning says so).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from camworld import __version__
from camworld.files import write_bytes
from camworld.memory import MAGIC as BANK_MAGIC
from camworld.memory import MemoryBank

FORMAT, VERSION = "camworld.World", 2
READS = (1, 2)                    # 1: banks without extrinsics (derived on load, as they were then)
MANIFEST = "world.json"
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
# Every attribute of World this module saves or rebuilds. save_world refuses a World with others, so a
# new piece of World state cannot be silently dropped: teach this module about it. (torch_threads is the
# process's setting, camworld.threads, not the world's: it is not saved.)
WORLD_ATTRIBUTES = frozenset({"source", "num_worlds", "retrieval", "context_size", "shared_memory", "memories",
                              "prompts", "_rng", "_last", "_clock", "last_retrieved", "torch_threads"})
# ... and of its learned frame source (camworld.model.frames.ModelFrames; ``gens`` via camera_state)
SOURCE_ATTRIBUTES = frozenset({"device", "model", "cfg", "sample_steps", "guidance", "context_noise", "frame_size",
                               "frame_stride", "frames_per_pass", "gens", "dtype", "dit",
                               "warp_start", "warp_depth", "warp_source", "warp_paste", "warp_space", "warp_fill",
                               "network_context", "novel_start", "refine", "refine_net",
                               "record_parts", "last_parts",
                               "learned_depth", "depth_net",   # depth_net: the model's
                               "decoder"})   # dit, decoder: the model's, in dtype (rebuilt from it)


# ---------------------------------------------------------------------- save


def save_world(world, path, extra: dict | None = None, worlds=None) -> Path:
    """Write ``world`` (a ``camworld.world.World``) to the folder ``path`` atomically (see module doc).

    Args:
        world: the World to save (its model is not saved: pass the same model to ``load_world``).
        path: a folder; created if missing; an earlier save there is replaced only once this one is
            complete. A non-empty folder that is not a saved world is refused.
        extra: JSON-serialisable dict kept with the world (scene seed, poses, notes, ...).
        worlds: for separate-memory worlds, the world indices to save (default all); they become
            worlds 0.. of the loaded World. A shared world is always saved whole.
    Returns:
        the folder's Path.
    """
    if world.model is None:
        raise ValueError(f"save_world saves a learned world; this World's frames come from "
                         f"{type(world.source).__name__} (the sim twin's world is its scene: rebuild it from the seed)")
    unknown = sorted(set(vars(world)) - WORLD_ATTRIBUTES) + sorted(set(vars(world.source)) - SOURCE_ATTRIBUTES)
    if unknown:
        raise RuntimeError(f"World has state that camworld.world_io does not know how to save: {unknown}; "
                           "update WORLD_ATTRIBUTES and the save/load code in camworld/world_io.py")
    sel = _selection(world, worlds)
    banks = [world.memories[0]] if world.shared_memory else [world.memories[i] for i in sel]
    try:
        json.dumps(extra or {})
    except (TypeError, ValueError) as e:
        raise ValueError(f"extra must be JSON-serialisable (str, numbers, lists, dicts): {e}") from None
    manifest = {
        "format": FORMAT, "version": VERSION, "camworld_version": __version__,
        "model": _model_fingerprint(world.model),
        "world": {"num_worlds": len(sel), "shared_memory": world.shared_memory, "retrieval": world.retrieval,
                  "context_size": world.context_size, "sample_steps": world.sample_steps,
                  "guidance": world.guidance, "context_noise": world.context_noise,
                  "dtype": str(world.dtype).replace("torch.", ""), "frames_per_pass": world.frames_per_pass,
                  "warp_start": world.warp_start, "warp_depth": world.warp_depth, "warp_source": world.warp_source,
                  "warp_paste": world.warp_paste, "learned_depth": world.learned_depth,
                  "warp_space": world.warp_space, "warp_fill": world.warp_fill,
                  "network_context": world.network_context, "novel_start": world.novel_start,
                  "refine": world.refine, "memory_capacity": banks[0].capacity},
        "cameras": [_camera_state(world, i) for i in sel],
        "clocks": [world.bank_clock(0)] if world.shared_memory else [world.bank_clock(i) for i in sel],
        "extra": extra or {},
    }
    folder = Path(path)
    _prepare_folder(folder)
    token = secrets.token_hex(6)
    names = [f"memory-{j}-{token}.npz" for j in range(len(banks))]
    written = []
    try:
        for bank, name in zip(banks, names):
            written.append(folder / name)
            bank.save(folder / name, durable=True)
        manifest["banks"] = names
        write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1).encode(), prefix=".world-",
                    durable=True)                                                   # the commit
    except BaseException:
        for p in written:
            if p.exists():
                p.unlink()
        raise
    for old in folder.glob("memory-*.npz"):                  # the previous save's banks, now unreferenced
        if old.name not in names:
            old.unlink()
    return folder


def _selection(world, worlds) -> list:
    if worlds is None:
        return list(range(world.num_worlds))
    if world.shared_memory:
        raise ValueError("a shared-memory World is one world: save it whole (worlds=None)")
    sel = [int(i) for i in np.atleast_1d(worlds)]
    bad = [i for i in sel if not 0 <= i < world.num_worlds]
    if not sel or bad or len(set(sel)) != len(sel):
        raise ValueError(f"worlds must be distinct indices in [0, {world.num_worlds}), got {worlds!r}")
    return sel


def _camera_state(world, i: int) -> dict:
    cam = world.camera_state(i)
    gen, rng = cam["gen"], cam["rng"]
    return {
        "prompt": cam["prompt"],
        "last": cam["last"],
        "last_retrieved": [int(j) for j in cam["last_retrieved"]],
        "rng": None if rng is None else _jsonable(rng.bit_generator.state),
        "torch_rng": None if gen is None else {
            "device": gen.device.type,
            "state": base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")},
    }


def _model_fingerprint(model) -> dict:
    h = hashlib.sha256()
    for name, t in sorted(model.vae.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    h.update(repr(float(model.cfg.latent_scale)).encode())
    return {"frame_size": int(model.cfg.frame_size), "latent_shape": list(model.latent_shape),
            "preset": getattr(model.cfg, "preset", None), "vae_sha256": h.hexdigest()}


def _prepare_folder(folder: Path):
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; save_world writes a folder: pick a new path")
    if folder.is_dir() and not (folder / MANIFEST).exists():
        ours = all(p.name.startswith(("memory-", ".world-", ".memory-")) for p in folder.iterdir())
        if not ours:
            raise ValueError(f"{folder} is a non-empty folder that is not a saved world; refusing to write into it: "
                             "pick a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return {"__ndarray__": x.tolist(), "dtype": str(x.dtype)}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _from_jsonable(x):
    if isinstance(x, dict):
        if "__ndarray__" in x:
            return np.asarray(x["__ndarray__"], dtype=np.dtype(x["dtype"]))
        return {k: _from_jsonable(v) for k, v in x.items()}
    return x


# ---------------------------------------------------------------------- load


def read_manifest(path) -> dict:
    """The manifest of a saved world (checked: format, version), without loading its memory."""
    folder = Path(path)
    what = f"{str(folder)!r} is not a saved camworld world (a folder written by save_world)"
    if not folder.exists():
        raise FileNotFoundError(f"no saved world at {folder}")
    if not folder.is_dir():
        if zipfile.is_zipfile(folder):
            try:
                with zipfile.ZipFile(folder) as zf:
                    magic = json.loads(zf.read("header.json")).get("magic")
            except (KeyError, ValueError, zipfile.BadZipFile, AttributeError):
                magic = None
            if magic == BANK_MAGIC:
                raise ValueError(f"{str(folder)!r} is a single MemoryBank file, not a saved world; read it with "
                                 "camworld.memory.MemoryBank.load, or save whole worlds with save_world")
        raise ValueError(f"{what}: it is a file")
    mpath = folder / MANIFEST
    if not mpath.exists():
        raise ValueError(f"{what}: it has no {MANIFEST} (the folder is foreign, or a first save was interrupted "
                         "before it completed)")
    try:
        manifest = json.loads(mpath.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{mpath} is damaged or truncated (not valid JSON: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(f"{what}: {MANIFEST} has format {fmt!r}, expected {FORMAT!r}")
    if manifest.get("version") not in READS:
        raise ValueError(f"{mpath} is saved-world format version {manifest.get('version')!r}; this camworld reads "
                         f"versions {', '.join(map(str, READS))}")
    return manifest


def load_world(path, model, device=None):
    """Load a world saved by ``save_world``.

    Args:
        path: the saved world's folder.
        model: the ``WorldModel`` to generate with (or a checkpoint path). Its frame size must match
            the saved world's. If its VAE differs from the one that made the cached latents, the
            latents are dropped with a warning (frames are re-encoded when retrieved).
        device: where the World runs (default: the model's device).
    Returns:
        ``(world, extra)``: a ``World`` ready to ``step``, and the ``extra`` dict given to ``save_world``.
    """
    from camworld.world import World, load_world_model

    if not hasattr(model, "vae"):
        model = load_world_model(model, device="auto" if device is None else device)
    manifest = read_manifest(path)
    folder = Path(path)
    try:
        w = manifest["world"]
        cams, clocks, names = manifest["cameras"], manifest["clocks"], manifest["banks"]
        keep_latents = _check_model(manifest["model"], model, folder)
        world = World(model, num_worlds=int(w["num_worlds"]), retrieval=w["retrieval"],
                      context_size=int(w["context_size"]), sample_steps=w["sample_steps"], guidance=w["guidance"],
                      memory_capacity=int(w["memory_capacity"]), shared_memory=bool(w["shared_memory"]),
                      context_noise=w.get("context_noise"),     # None (saved before it existed): the model's
                      dtype=w.get("dtype", "float32"),            # files from before the fast path sampled in float32
                      frames_per_pass=w.get("frames_per_pass"),
                      warp_start=w.get("warp_start", 1.0),         # files from before warp starts sampled from noise
                      warp_depth=w.get("warp_depth"), warp_source=w.get("warp_source"),
                      warp_paste=w.get("warp_paste", False),       # files from before pasting showed the network's
                      learned_depth=w.get("learned_depth", False),  # ... and warped with the assumed depth
                      warp_space=w.get("warp_space", "pixels"),    # ... and warped pixels
                      warp_fill=w.get("warp_fill", "border"),      # ... with the border repeated
                      network_context=w.get("network_context", 0),  # ... and the network saw every context frame
                      novel_start=w.get("novel_start", w.get("warp_start", 1.0)),   # ... and started unseen cells there too
                      refine=w.get("refine", False),               # ... and showed the network's pixels there
                      device=model.device if device is None else device)
        n_banks = 1 if world.shared_memory else world.num_worlds
        if len(cams) != world.num_worlds or len(clocks) != n_banks or len(names) != n_banks:
            raise ValueError(f"{len(cams)} cameras, {len(clocks)} clocks and {len(names)} banks for "
                             f"{world.num_worlds} worlds (shared_memory={world.shared_memory})")
        for b, (name, clock) in enumerate(zip(names, clocks)):
            world.set_bank(b, _load_bank(folder, name, keep_latents), int(clock))
        for i, cam in enumerate(cams):
            _restore_camera(world, i, cam, world.memory_of(i), folder)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{folder / MANIFEST} is malformed ({type(e).__name__}: {e}); was it written by "
                         "camworld.world_io.save_world?") from None
    return world, manifest.get("extra") or {}


def load_world_into(world, i: int, path, source: int = 0) -> dict:
    """Replace world ``i`` of a separate-memory ``world`` by world ``source`` of a saved one.

    For envs whose backend holds several worlds (a vector env's slot). Returns the saved ``extra``.
    """
    if world.shared_memory:
        raise ValueError("load_world_into replaces one world of a separate-memory World; a shared World is one "
                         "world: use load_world")
    if not 0 <= int(i) < world.num_worlds:
        raise IndexError(f"world index {i} out of range for {world.num_worlds} worlds")
    manifest = read_manifest(path)
    folder = Path(path)
    try:
        w = manifest["world"]
        if w["shared_memory"] and int(w["num_worlds"]) > 1:
            raise ValueError(f"{folder} holds one shared world of {w['num_worlds']} cameras; load it whole with "
                             "load_world (one camera's newest frame is not the newest of the shared memory)")
        if not 0 <= int(source) < int(w["num_worlds"]):
            raise IndexError(f"source world {source} out of range: {folder} holds {w['num_worlds']} worlds")
        if w["retrieval"] != world.retrieval or int(w["context_size"]) != world.context_size:
            warnings.warn(f"{folder} was explored with retrieval={w['retrieval']!r}, k={w['context_size']}; it "
                          f"continues with this World's retrieval={world.retrieval!r}, k={world.context_size}",
                          stacklevel=2)
        keep_latents = _check_model(manifest["model"], world.model, folder)
        bank = _load_bank(folder, manifest["banks"][source], keep_latents)
        world.set_bank(i, bank, int(manifest["clocks"][source]))
        _restore_camera(world, i, manifest["cameras"][source], bank, folder)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{folder / MANIFEST} is malformed ({type(e).__name__}: {e})") from None
    return manifest.get("extra") or {}


def camera_state(world, i: int) -> tuple:
    """The newest frame uint8 (H, W, 3) and planar pose (3,) of camera/world ``i`` (where it stands)."""
    return world.newest(i)


def _check_model(saved: dict, model, folder: Path) -> bool:
    """Raise if the model cannot continue the saved world; -> whether the cached latents stay valid."""
    now = _model_fingerprint(model)
    if int(saved["frame_size"]) != now["frame_size"]:
        raise ValueError(f"{folder} was explored at {saved['frame_size']}x{saved['frame_size']} frames but this model "
                         f"generates {now['frame_size']}x{now['frame_size']}: load it with a model of the same size")
    if list(saved["latent_shape"]) != now["latent_shape"] or saved["vae_sha256"] != now["vae_sha256"]:
        warnings.warn(f"{folder} was explored with another VAE (latent shape {saved['latent_shape']}, preset "
                      f"{saved.get('preset')!r}); its cached latents are dropped and frames are re-encoded when "
                      "retrieved, so the next frames differ from what the original model would generate", stacklevel=3)
        return False
    return True


def _load_bank(folder: Path, name: str, keep_latents: bool) -> MemoryBank:
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.startswith("memory-"):
        raise ValueError(f"{folder / MANIFEST} names a foreign memory file {name!r}")
    p = folder / name
    if not p.exists():
        raise ValueError(f"{folder} is incomplete: its manifest names {name}, which is missing (copy the whole folder)")
    try:
        bank = MemoryBank.load(p)
    except ValueError as e:
        raise ValueError(f"{folder}: memory bank {name} cannot be read: {e}") from None
    if keep_latents or bank.latent_shape is None:
        return bank
    out = MemoryBank(frame_shape=bank.frame_shape, capacity=bank.capacity, meta=bank.meta)
    for j in range(0, len(bank), 4096):
        idx = np.arange(j, min(j + 4096, len(bank)))
        out.append(bank.frames(idx), bank.poses[idx], bank.times[idx], bank.sources[idx], extrinsics=bank.extrinsics(idx),
                   observed=bank.observed[idx])
    bank.close()
    return out


def _restore_camera(world, i: int, cam: dict, bank: MemoryBank, folder: Path):
    last = int(cam["last"])
    retrieved = np.asarray(cam["last_retrieved"], np.int64).reshape(-1)
    if not -1 <= last < len(bank) or (len(retrieved) and not (0 <= retrieved.min() and retrieved.max() < len(bank))):
        raise ValueError(f"{folder / MANIFEST}: camera {i} points at frame {last} / {retrieved.tolist()} of a "
                         f"{len(bank)}-frame memory: the manifest and its banks do not belong together")
    prompt = cam["prompt"]
    if prompt is not None and not isinstance(prompt, str):
        raise ValueError(f"{folder / MANIFEST}: camera {i}'s prompt must be a string or null, got {prompt!r}")
    world.set_camera_state(i, prompt, last, retrieved,
                           rng=None if cam["rng"] is None else _numpy_rng(cam["rng"], folder),
                           gen=None if cam["torch_rng"] is None else _torch_rng(cam["torch_rng"], world.device, folder))


def _numpy_rng(state: dict, folder: Path) -> np.random.Generator:
    name = state.get("bit_generator")
    if name not in BIT_GENERATORS:
        raise ValueError(f"{folder / MANIFEST}: unknown numpy bit generator {name!r}; expected one of {BIT_GENERATORS}")
    bg = getattr(np.random, name)()
    try:
        bg.state = _from_jsonable(state)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{folder / MANIFEST}: invalid {name} state ({e})") from None
    return np.random.Generator(bg)


def _torch_rng(saved: dict, device: torch.device, folder: Path) -> torch.Generator:
    try:
        raw = base64.b64decode(str(saved["state"]).encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise ValueError(f"{folder / MANIFEST}: the torch generator state is not valid base64 ({e})") from None
    gen = torch.Generator(device=device)
    if saved["device"] == device.type:
        try:
            gen.set_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
            return gen
        except RuntimeError as e:
            raise ValueError(f"{folder / MANIFEST}: invalid torch generator state ({e})") from None
    warnings.warn(f"{folder} was explored on {saved['device']}, this World runs on {device.type}: the sampling RNG "
                  "state cannot move between device types, so it is re-seeded from the saved state (deterministic, "
                  "but not the frames the original device would have drawn)", stacklevel=4)
    return gen.manual_seed(int.from_bytes(hashlib.sha256(raw).digest()[:8], "little") % 2**63)
