"""The fast sampling path: per-segment target state, bfloat16 DiT, frames per pass, the step profile."""

import numpy as np
import pytest
import torch

from camworld.geometry import planar_to_extrinsics


@pytest.fixture(scope="module")
def live():
    """A tiny world model whose zero-initialised layers (adaLN, camera, final) are perturbed, so that every
    path really carries signal (an untrained DiT outputs exactly 0)."""
    from camworld.model import WorldModel, preset

    torch.manual_seed(0)
    m = WorldModel(preset("tiny")).eval()
    with torch.no_grad():
        for p in m.dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def _inputs(model, B=2, Fc=4, Ft=2, seed=0):
    C, h, w = model.latent_shape
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    ctx = torch.randn(B, Fc, C, h, w, generator=g)
    mask = torch.ones(B, Fc, dtype=torch.bool)
    mask[0, :1] = False
    ce = torch.as_tensor(planar_to_extrinsics(rng.uniform(-1, 1, (B, Fc, 3))), dtype=torch.float32)
    te = torch.as_tensor(planar_to_extrinsics(rng.uniform(-1, 1, (B, Ft, 3))), dtype=torch.float32)
    noise = torch.randn(B, Ft, C, h, w, generator=g)
    return ctx, mask, ce, te, noise


@torch.no_grad()
def test_prepared_target_state_is_bitwise_the_plain_forward(live):
    ctx, mask, ce, te, noise = _inputs(live)
    dit = live.dit
    state = dit.encode_context(ctx, mask, ce, ["a red room", None])
    prep = dit.prepare_targets(te, state)
    for t in (0.9, 0.4, 0.1):                       # the same prep serves every sampler step
        tt = torch.full((2,), t)
        plain = dit(noise, tt, te, state)
        assert plain.abs().max() > 0 and torch.equal(plain, dit(noise, tt, te, state, prep=prep))
    with pytest.raises(ValueError, match="cached context"):
        dit.prepare_targets(te, dit.encode_context(ctx, mask, ce, [None, None], cache=False))


@torch.no_grad()
def test_bfloat16_sampling_matches_float32_within_tolerance(live):
    from camworld.model.world_model import cast_dit

    model = live
    ctx, mask, ce, te, noise = _inputs(model, seed=1)
    ref = model.generate(ctx, mask, ce, te, [None, None], steps=4, noise=noise)
    bf = cast_dit(model.dit, torch.bfloat16)
    assert bf is cast_dit(model.dit, torch.bfloat16)          # one cached copy per model and dtype
    assert model.dit.patch_in.weight.dtype == torch.float32   # the original is untouched
    fast = model.generate(ctx, mask, ce, te, [None, None], steps=4, noise=noise, dit=bf)
    assert fast.dtype == torch.float32
    rel = (fast - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()
    assert 0 < rel < 0.05, rel                                # close, and really computed in bfloat16
    again = model.generate(ctx, mask, ce, te, [None, None], steps=4, noise=noise, dit=bf)
    assert torch.equal(fast, again)                           # deterministic on fixed seeds


def test_inference_dtype_policy_and_errors(monkeypatch):
    from camworld.model.world_model import inference_dtype

    assert inference_dtype("cpu", "float32") == torch.float32
    assert inference_dtype("cpu", "bfloat16") == torch.bfloat16
    assert inference_dtype("cpu", "auto") in (torch.float32, torch.bfloat16)
    # a single world on a CPU samples in float32 (the casts cost more than bfloat16 saves at batch 1)
    assert inference_dtype("cpu", "auto", num_worlds=1) == torch.float32
    # 16 worlds: bfloat16 where the CPU multiplies it in hardware (AMX tiles or AVX512-BF16), else float32
    for amx, avx in ((False, False), (True, False), (False, True)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx, raising=False)
        want = torch.bfloat16 if amx or avx else torch.float32
        assert inference_dtype("cpu", "auto", num_worlds=16) == want, (amx, avx)
        assert inference_dtype("cpu", "auto", num_worlds=1) == torch.float32
    monkeypatch.undo()
    assert inference_dtype("cpu", "bfloat16", num_worlds=1) == torch.bfloat16      # asked for: given
    with pytest.raises(ValueError, match="float16 sampling is for CUDA"):
        inference_dtype("cpu", "float16")
    with pytest.raises(ValueError, match="dtype must be"):
        inference_dtype("cpu", "half-ish")


def _world(model, start, **kw):
    from camworld.world import World

    w = World(model, num_worlds=2, device="cpu", **kw)
    for i in range(2):
        w.reset(i, start[0], start[1] + np.array([0.0, 0.1 * i, 0.0]), seed=i)
    return w


def _targets(start, T=4):
    p = start[1]
    seg = np.stack([p + np.array([0.0, 0.0, np.deg2rad(3.0) * (j + 1)]) for j in range(T)])
    return np.stack([seg, seg + np.array([0.0, 0.1, 0.0])])


def test_world_in_bfloat16_stays_close_to_float32(live, start):
    from camworld.metrics import psnr

    model = live
    ref = _world(model, start, dtype="float32").step(_targets(start))
    fast = _world(model, start, dtype="bfloat16").step(_targets(start))
    assert fast.shape == ref.shape and fast.dtype == np.uint8
    assert 30.0 < psnr(fast, ref) < 99.0, psnr(fast, ref)          # close, not identical
    assert np.array_equal(fast, _world(model, start, dtype="bfloat16").step(_targets(start)))


def test_frames_per_pass_sets_the_passes_per_step(model, start):
    from camworld.profile import Timings

    for fpp, passes in ((2, 2), (4, 1), (1, 4)):
        w = _world(model, start, dtype="float32", frames_per_pass=fpp)
        assert w.frames_per_pass == fpp
        with Timings() as tm:
            frames = w.step(_targets(start))
        assert frames.shape[:2] == (2, 4)
        assert tm.calls["denoise"] == passes and tm.calls["retrieval"] == passes
        assert len(w.memory_of(0)) == 5                     # start + the 4 generated frames, whatever the passes
    with pytest.raises(ValueError, match="frames_per_pass"):
        _world(model, start, frames_per_pass=0)
    with pytest.raises(ValueError, match="sample_steps"):
        _world(model, start, sample_steps=0)


def test_sim_twin_rejects_learned_world_sampler_settings():
    from camworld.envs.backends import WorldSpec

    with pytest.raises(ValueError, match="only applies to the learned world"):
        WorldSpec("sim", dtype="bfloat16").build(1)
    with pytest.raises(ValueError, match="only applies to the learned world"):
        WorldSpec("sim", frames_per_pass=4).build(1)


def test_profile_sections_collect_only_inside_timings():
    import time

    from camworld.profile import Timings, section

    with section("outside"):
        pass                                      # no Timings: nothing recorded, nothing raised
    with Timings() as outer:
        with section("a"):
            time.sleep(0.01)
        with Timings() as inner:
            with section("a"):
                pass
            with section("b"):
                pass
    assert outer.calls == {"a": 2, "b": 1} and inner.calls == {"a": 1, "b": 1}
    assert outer.seconds["a"] >= 0.01 > inner.seconds["a"]
    with section("after"):
        pass
    assert "after" not in outer.calls


def test_bench_env_breakdown_and_reference_run(tiny_checkpoint, capsys):
    from camworld.envs.bench import main

    main(["--worlds", "model", "--num-envs", "2", "--steps", "1", "--warmup", "0", "--checkpoint", tiny_checkpoint,
          "--breakdown", "--reference", "--no-separate", "--threads", "1"])
    out = capsys.readouterr().out
    assert "batched, reference sampler" in out and "x the reference sampler" in out
    assert "| 2 | float32, 8 steps, 2/pass, 2 passes |" in out
    for col in ("retrieval", "encode", "warp", "context", "denoise (per network call)", "decode", "memory"):
        assert col in out


def test_bench_env_times_a_warp_start_sampler(tiny_checkpoint, capsys):
    from camworld.envs.bench import main, parse_sampler

    assert parse_sampler("bfloat16:4:2:0.5") == {"dtype": "bfloat16", "sample_steps": 4, "frames_per_pass": 2,
                                                  "warp_start": 0.5}
    with pytest.raises(SystemExit, match="WARP"):
        parse_sampler("bfloat16:4:2:x")
    assert parse_sampler(":4:2:0.5:on") == {"sample_steps": 4, "frames_per_pass": 2, "warp_start": 0.5,
                                            "warp_paste": True}
    assert parse_sampler("::::off") == {"warp_paste": False}
    with pytest.raises(SystemExit, match="PASTE"):
        parse_sampler(":4:2:0.5:yes")
    assert parse_sampler(":::::latents") == {"warp_space": "latents"}
    with pytest.raises(SystemExit, match="SPACE"):
        parse_sampler(":::::voxels")
    assert parse_sampler("::::::4") == {"network_context": 4}
    assert parse_sampler(":::::::on") == {"learned_depth": True}
    with pytest.raises(SystemExit, match="DEPTH"):
        parse_sampler(":::::::maybe")
    main(["--worlds", "model", "--num-envs", "2", "--steps", "1", "--warmup", "0", "--checkpoint", tiny_checkpoint,
          "--breakdown", "--samplers", "float32:4:2:0.5", "float32:4:2:0.5:on", "float32:4:2:0.5:on:latents",
          "--no-separate", "--threads", "1"])
    out = capsys.readouterr().out
    assert "float32, 4 steps, warp 0.5 (" in out and "float32, 4 steps, warp 0.5 (2 calls), paste, " in out
    assert "float32, 4 steps, warp 0.5 (2 calls), latent warp, paste, " in out


@torch.no_grad()
def test_a_single_network_call_runs_context_and_targets_in_one_joint_pass_with_the_same_latents(live, monkeypatch):
    """A warp start below the schedule's last knot makes one network call: generate then runs the context and
    the targets jointly (no K/V cache), and the latents equal the cached path's."""
    from camworld.model.diffusion import sample

    ctx, mask, ce, te, noise = _inputs(live, seed=2)
    dit = live.dit
    caches = []
    real = type(dit).encode_context

    def spy(self, *a, cache=None, **k):
        caches.append(cache)
        return real(self, *a, cache=cache, **k)

    monkeypatch.setattr(type(dit), "encode_context", spy)
    out = live.generate(ctx, mask, ce, te, [None, "a room"], steps=4, noise=noise, start=0.2)
    assert caches == [False]
    state = real(dit, ctx, mask, ce, [None, "a room"])                     # the cached path
    ref = sample(dit, noise.shape, te, state, steps=4, shift=live.cfg.diffusion.shift, noise=noise, start=0.2)
    assert ref.abs().max() > 0 and torch.allclose(out, ref, atol=1e-5)
    live.generate(ctx, mask, ce, te, [None, None], steps=4, noise=noise, start=0.6)   # several calls: cached
    assert caches[-1] is None
