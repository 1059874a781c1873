"""camworld.model.depth: the learned depth for the warp (network, files, geometry, the world's option)."""

import json

import numpy as np
import pytest
import torch

from camworld.geometry import planar_to_extrinsics
from camworld.model import WorldModel, preset
from camworld.model.depth import DepthNet, load_depth_net, points_at_depth
from camworld.model.warp import _scene_points


def test_depth_net_shapes_files_and_errors(tmp_path):
    torch.manual_seed(0)
    net = DepthNet(8)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert net(x).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="divide by 8"):
        net(torch.zeros(1, 3, 30, 30))
    net.save(tmp_path / "d", record={"steps": 1})
    back = load_depth_net(tmp_path / "d.safetensors")
    assert back.channels == 8 and torch.equal(back(x), net.eval()(x))
    with pytest.raises(FileNotFoundError, match="no depth net"):
        load_depth_net(tmp_path / "missing")
    doc = json.loads((tmp_path / "d.json").read_text())
    (tmp_path / "d.json").write_text(json.dumps({**doc, "format": "other"}))
    with pytest.raises(ValueError, match="not a camworld depth net"):
        load_depth_net(tmp_path / "d")
    (tmp_path / "d.json").write_text(json.dumps({**doc, "config": {"channels": 16}}))
    with pytest.raises(ValueError, match="do not match"):
        load_depth_net(tmp_path / "d")


def test_points_at_depth_puts_every_pixel_at_the_asked_z():
    tgt = torch.as_tensor(planar_to_extrinsics(np.array([[[1.0, -2.0, 0.7], [0.0, 0.0, -2.0]]])))
    X = _scene_points(tgt, 8, 52.67, 6.0, True)
    z = torch.rand(1, 2, 64, dtype=torch.float64) * 10 + 0.5
    P = points_at_depth(X, tgt, z)
    cam = (P - tgt[..., 3][:, :, None]) @ tgt[..., :3]
    assert torch.allclose(cam[..., 2], z)
    rays = (X - tgt[..., 3][:, :, None]) @ tgt[..., :3]
    assert torch.allclose(cam[..., :2] / cam[..., 2:], rays[..., :2] / rays[..., 2:])    # the same pixel rays


def _world(**kw):
    from camworld.world import World

    torch.manual_seed(0)
    m = WorldModel(preset("tiny"))
    object.__setattr__(m, "depth_net", DepthNet(8).eval())
    return World(m, device="cpu", warp_start=0.5, warp_source="nearest", **kw)


def test_learned_depth_changes_walks_not_turns_and_is_validated():
    """A turn in place warps the same whatever the depth; a step forward does not."""
    from camworld import fidelity
    from camworld.world import World

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    p0 = d.poses[0]
    turn = np.stack([p0 + [0, 0, 0.05], p0 + [0, 0, 0.1]])[None]
    walk = np.stack([p0 + [0.3 * np.cos(p0[2]), 0.3 * np.sin(p0[2]), 0]] * 2)[None]

    def run(target, learned):
        w = _world(learned_depth=learned, warp_paste=True)
        w.reset(0, d.gt[0], p0, seed=3)
        return w.step(target)

    assert np.abs(run(turn, True).astype(int) - run(turn, False).astype(int)).max() <= 1
    assert np.abs(run(walk, True).astype(int) - run(walk, False).astype(int)).max() > 1
    assert _world().learned_depth is False                       # off unless the checkpoint's config names it
    assert _world(learned_depth=True).learned_depth is True
    with pytest.raises(ValueError, match="learned_depth"):
        World(WorldModel(preset("tiny")), device="cpu", learned_depth=True)


def test_checkpoint_naming_a_depth_net_loads_it(tmp_path):
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.diffusion.depth_net = "depth.safetensors"
    WorldModel(cfg).save(tmp_path / "ck")
    DepthNet(8).save(tmp_path / "depth")
    m = WorldModel.load(tmp_path / "ck.safetensors", device="cpu")
    assert isinstance(m.depth_net, DepthNet) and "depth_net" not in dict(m.named_children())
    assert not any(k.startswith("depth_net") for k in m.state_dict())
    from camworld.world import World

    assert World(m, device="cpu").learned_depth is True          # named by the config: on by default
    cfg.diffusion.depth_net = None                               # a depth.safetensors beside it: off unless asked
    WorldModel(cfg).save(tmp_path / "ck2")
    m2 = WorldModel.load(tmp_path / "ck2.safetensors", device="cpu")
    assert World(m2, device="cpu").learned_depth is False and World(m2, device="cpu", learned_depth=True).learned_depth
