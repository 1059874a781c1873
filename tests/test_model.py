"""Model behaviour on the tiny preset: shapes, invariances, determinism, learning, checkpoint errors."""

import json

import numpy as np
import pytest
import torch

from camworld.geometry import planar_to_extrinsics
from camworld.model import WorldModel, preset
from camworld.model.diffusion import flow_loss
from camworld.model.text import tokenize


def _model(**dit):
    torch.manual_seed(0)
    cfg = preset("tiny")
    for k, v in dit.items():
        setattr(cfg.dit, k, v)
    m = WorldModel(cfg).eval()
    # wake up the zero-initialised paths so outputs depend on every input
    with torch.no_grad():
        for p in m.dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return m


def _inputs(m, B=2, Fc=3, Ft=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    C, h, w = m.latent_shape
    ctx = torch.randn(B, Fc, C, h, w, generator=g)
    mask = torch.ones(B, Fc, dtype=torch.bool)
    poses = np.random.default_rng(seed).normal(size=(B, Fc + Ft, 3))
    ext = torch.tensor(planar_to_extrinsics(poses), dtype=torch.float32)
    zt = torch.randn(B, Ft, C, h, w, generator=g)
    return ctx, mask, ext[:, :Fc], ext[:, Fc:], zt


@pytest.mark.parametrize("Fc", [1, 2, 5])
def test_output_shape_any_context_length(Fc):
    m = _model()
    ctx, mask, cext, text, zt = _inputs(m, Fc=Fc)
    st = m.dit.encode_context(ctx, mask, cext, ["a", None])
    v = m.dit(zt, torch.full((2,), 0.5), text, st)
    assert v.shape == zt.shape


def test_padded_context_is_ignored():
    m = _model()
    ctx, mask, cext, text, zt = _inputs(m, Fc=3)
    st = m.dit.encode_context(ctx, mask, cext, ["a", "b"])
    ref = m.dit(zt, torch.full((2,), 0.5), text, st)
    # prepend a padded (masked) frame full of garbage: output must not change
    C, h, w = m.latent_shape
    ctx2 = torch.cat([torch.randn(2, 1, C, h, w) * 100, ctx], 1)
    mask2 = torch.cat([torch.zeros(2, 1, dtype=torch.bool), mask], 1)
    cext2 = torch.cat([cext[:, :1], cext], 1)
    st2 = m.dit.encode_context(ctx2, mask2, cext2, ["a", "b"])
    # positions shift by one frame (-Fc..-1 right-aligned), so the valid frames keep their positions
    out = m.dit(zt, torch.full((2,), 0.5), text, st2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_cached_context_equals_joint_masked_attention():
    """The once-per-step context cache must compute exactly what full attention with the mask computes."""
    m = _model()
    ctx, mask, cext, text, zt = _inputs(m)
    mask[0, 0] = False
    t = torch.full((2,), 0.3)
    cached = m.dit(zt, t, text, m.dit.encode_context(ctx, mask, cext, ["x", "y"]))
    joint = m.dit(zt, t, text, m.dit.encode_context(ctx, mask, cext, ["x", "y"], cache=False))
    torch.testing.assert_close(cached, joint, atol=1e-5, rtol=1e-4)


def test_rigid_transform_of_all_poses_leaves_output_unchanged():
    m = _model()
    ctx, mask, cext, text, zt = _inputs(m)
    t = torch.full((2,), 0.7)
    st = m.dit.encode_context(ctx, mask, cext, ["a", "b"])
    ref = m.dit(zt, t, text, st)
    # rotate about z by 1 rad and translate in the plane: a rigid motion of the whole world
    a = 1.0
    Rz = torch.tensor([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]], dtype=torch.float32)
    shift = torch.tensor([3.0, -2.0, 0.0])

    def move(e):
        return torch.cat([Rz @ e[..., :3], (Rz @ e[..., 3:]) + shift[:, None]], -1)

    st2 = m.dit.encode_context(ctx, mask, move(cext), ["a", "b"])
    out = m.dit(zt, t, move(text), st2)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_camera_changes_output():
    m = _model()
    ctx, mask, cext, text, zt = _inputs(m)
    t = torch.full((2,), 0.7)
    st = m.dit.encode_context(ctx, mask, cext, ["a", "b"])
    moved = text.clone()
    moved[..., 3] += 1.0
    assert not torch.allclose(m.dit(zt, t, text, st), m.dit(zt, t, moved, st))


def test_context_latents_unchanged_through_sampling_and_seed_determinism():
    m = _model()
    ctx, mask, cext, text, _ = _inputs(m)
    before = ctx.clone()
    a = m.generate(ctx, mask, cext, text, ["a", "b"], generator=torch.Generator().manual_seed(3))
    b = m.generate(ctx, mask, cext, text, ["a", "b"], generator=torch.Generator().manual_seed(3))
    c = m.generate(ctx, mask, cext, text, ["a", "b"], generator=torch.Generator().manual_seed(4))
    assert torch.equal(ctx, before)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (2, 2) + m.latent_shape


def test_guidance_runs_and_differs():
    m = _model()
    ctx, mask, cext, text, _ = _inputs(m)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = m.generate(ctx, mask, cext, text, ["red", "blue"], generator=g(), guidance=1.0)
    b = m.generate(ctx, mask, cext, text, ["red", "blue"], generator=g(), guidance=3.0)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("self_only", [True, False])
def test_tiny_dit_overfits_a_fixed_batch(self_only):
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.dit.context_self_only = self_only
    m = WorldModel(cfg)
    ctx, mask, cext, text, z0 = _inputs(m, B=4)
    opt = torch.optim.AdamW(m.dit.parameters(), lr=3e-3)
    losses = []
    for step in range(150):
        g = torch.Generator().manual_seed(step % 4)
        st = m.dit.encode_context(ctx, mask, cext, ["a"] * 4)
        loss = flow_loss(m.dit, z0, text, st, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_tiny_vae_overfits():
    torch.manual_seed(0)
    m = WorldModel(preset("tiny"))
    # structured images (blocky colour fields), not white noise, which no autoencoder can compress
    x = torch.nn.functional.interpolate(torch.rand(8, 3, 4, 4) * 2 - 1, size=32, mode="nearest")
    opt = torch.optim.Adam(m.vae.parameters(), lr=3e-3)
    first = None
    for _ in range(120):
        loss, _ = m.vae(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or loss.item()
    assert loss.item() < 0.5 * first


def test_tokenizer_is_stable_and_padded():
    a = tokenize(["A red City street", None, ""], vocab=256, length=6)
    b = tokenize(["a red city street"], vocab=256, length=6)
    assert torch.equal(a[0], b[0])
    assert a[1, 0] == 1 and a[1, 1:].eq(0).all() and torch.equal(a[1], a[2])


def test_checkpoint_round_trip_and_errors(tmp_path):
    m = _model()
    path = m.save(tmp_path / "m", record={"note": "test"})
    m2 = WorldModel.load(path, device="cpu")
    for (k, v), (_, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(v, v2), k
    # truncated weights
    data = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(ValueError, match="truncated|could not be read"):
        WorldModel.load(bad)
    # foreign config
    (tmp_path / "foreign.safetensors").write_bytes(data)
    (tmp_path / "foreign.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a camworld"):
        WorldModel.load(tmp_path / "foreign.safetensors")
    # config that does not match the weights
    doc = json.loads(path.with_suffix(".json").read_text())
    doc["config"]["dit"]["width"] = 64
    (tmp_path / "mismatch.safetensors").write_bytes(data)
    (tmp_path / "mismatch.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="shape"):
        WorldModel.load(tmp_path / "mismatch.safetensors")
    # unknown config key
    doc["config"]["dit"]["bogus"] = 1
    (tmp_path / "mismatch.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="bogus"):
        WorldModel.load(tmp_path / "mismatch.safetensors")
    with pytest.raises(FileNotFoundError):
        WorldModel.load(tmp_path / "nope.safetensors")


def test_sampling_bench_times_every_configuration():
    from camworld.model.bench import time_segments

    t = time_segments(_model(), ks=(1, 3), repeats=1, frames=2)
    assert set(t) == {(1, True), (1, False), (3, True), (3, False)}
    assert all(v > 0 for v in t.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_is_bit_for_bit_the_pair_rotation_and_depends_on_relative_position(dtype):
    """apply_rope on rope_pairs' tables rotates each channel pair (x1, x2) to (x1 c - x2 s, x2 c + x1 s), bit for
    bit as slicing the pairs apart does, and a query-key product depends on their position difference only."""
    from camworld.model.dit import apply_rope, rope_pairs, rope_tables

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 10, 24, generator=g).to(dtype)
    pos = torch.stack([torch.arange(10), torch.arange(10) % 4, torch.arange(10) // 4], -1)
    cos, sin = (a.to(dtype) for a in rope_tables(pos, 24))                 # (10, 12)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    naive = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)
    assert torch.equal(apply_rope(x, *rope_pairs(cos, sin)), naive)
    # relative positions: shifting both tokens by the same offset leaves q.k unchanged
    q, k = torch.randn(1, 1, 1, 24, generator=g), torch.randn(1, 1, 1, 24, generator=g)

    def dot(pq, pk):
        cq, sq = rope_pairs(*rope_tables(torch.tensor([pq]), 24))
        ck, sk = rope_pairs(*rope_tables(torch.tensor([pk]), 24))
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    assert torch.allclose(dot([1, 2, 3], [0, 0, 1]), dot([5, 3, 7], [4, 1, 5]), atol=1e-5)
    assert not torch.allclose(dot([1, 2, 3], [0, 0, 1]), dot([1, 2, 3], [0, 2, 1]), atol=1e-3)
