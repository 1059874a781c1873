"""The refine net of what no context frame saw: the net, its files, the world's parts, and the training stage."""

import json

import numpy as np
import pytest
import torch

from camworld.model.refine import RefineNet, load_refine_net, refine


def _batch(n=3, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    c = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    seen = torch.rand(n, s, s, generator=g) < 0.7
    filled = seen | (torch.rand(n, s, s, generator=g) < 0.5)
    return d, c, seen, filled


def test_an_untrained_refine_net_returns_the_decoded_frame_and_seen_pixels_are_always_the_composite():
    d, c, seen, filled = _batch()
    net = RefineNet(8)
    out = refine(net, d, c, seen, filled)
    m = seen[:, None].expand_as(d)
    assert torch.equal(out[m], c[m]) and torch.equal(out[~m], d[~m])       # zero-initialised output layer
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
    out = refine(net, d, c, seen, filled)
    assert torch.equal(out[m], c[m]) and not torch.allclose(out[~m], d[~m])  # it only changes what no one saw
    with pytest.raises(ValueError, match="divide by 8"):
        net(d[..., :12, :12], c[..., :12, :12], seen[:, None, :12, :12].float(), filled[:, None, :12, :12].float())


def test_refine_net_files_round_trip_and_bad_files_are_clear_errors(tmp_path):
    net = RefineNet(8)
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
    net.save(tmp_path / "r", record={"steps": 3})
    back = load_refine_net(tmp_path / "r")
    assert back.channels == 8 and all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                                      back.state_dict().values()))
    assert json.loads((tmp_path / "r.json").read_text())["record"] == {"steps": 3}
    with pytest.raises(FileNotFoundError, match="no refine net"):
        load_refine_net(tmp_path / "missing")
    (tmp_path / "r.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ValueError, match="not a camworld refine net"):
        load_refine_net(tmp_path / "r")


def test_the_unseen_loss_falls_on_a_fixed_batch_and_ignores_seen_pixels():
    from camworld.train.refine import unseen_l1

    torch.manual_seed(0)
    d, c, seen, filled = _batch(4, 16, 1)
    y = torch.rand(4, 3, 16, 16) * 2 - 1
    net = RefineNet(8)
    y2 = torch.where(seen[:, None], torch.zeros_like(y), y)                 # seen pixels changed: same loss
    assert torch.allclose(unseen_l1(net, (d, c, seen, filled, y)), unseen_l1(net, (d, c, seen, filled, y2)))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    first = float(unseen_l1(net, (d, c, seen, filled, y)).detach())
    for _ in range(60):
        loss = unseen_l1(net, (d, c, seen, filled, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


def _world(model, **kw):
    from camworld.world import World

    return World(model, device="cpu", **kw)


def test_world_records_its_parts_and_a_refine_net_changes_only_what_no_context_frame_saw(model, start):
    """record_parts keeps the pass's decoded frames, filled composite and masks; with a refine net the frames
    differ from the network's only where no context frame saw (the paste is on)."""
    frame, pose = start
    targets = np.array([[pose + [0.0, 0.0, np.deg2rad(15.0)], pose + [0.0, 0.0, np.deg2rad(25.0)]]])
    w = _world(model, warp_paste=True)
    assert w.refine is False
    with pytest.raises(ValueError, match="refine net"):
        _world(model, refine=True)
    w.source.record_parts = True
    w.reset(0, frame, pose, seed=1)
    plain = w.step(targets, append=False)
    p = w.source.last_parts
    assert p["decoded"].shape == plain.shape and p["composite"].shape == plain.shape
    assert p["seen"].shape == plain.shape[:-1] and (p["filled"] >= p["seen"]).all()
    assert 0 < (~p["seen"]).mean() < 1                                    # a turn uncovers a strip
    assert np.array_equal(plain[p["seen"]], p["composite"][p["seen"]])      # the paste shows what was seen

    net = RefineNet(8)
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
    object.__setattr__(model, "refine_net", net)
    try:
        r = _world(model, warp_paste=True, refine=True)
        assert r.refine is True
        r.reset(0, frame, pose, seed=1)
        out = r.step(targets, append=False)
    finally:
        object.__delattr__(model, "refine_net")
    assert np.array_equal(out[p["seen"]], plain[p["seen"]])
    assert not np.array_equal(out[~p["seen"]], plain[~p["seen"]])


def test_refine_stage_trains_resumes_exactly_and_writes_a_loadable_net(tmp_path, tiny_checkpoint):
    from camworld.train.cli import main

    common = ["--stage", "refine", "--steps", "4", "--log-every", "2", "--save-every", "2", "--threads", "1",
              "--refine-channels", "8", "--refine-episodes", "1", "--refine-world", tiny_checkpoint]
    main(common + ["--out", str(tmp_path / "a")])
    main(common[:2] + ["--steps", "2"] + common[4:] + ["--out", str(tmp_path / "b")])
    main(common + ["--out", str(tmp_path / "b"), "--resume"])
    a, b = load_refine_net(tmp_path / "a" / "refine"), load_refine_net(tmp_path / "b" / "refine")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    rec = json.loads((tmp_path / "a" / "refine.json").read_text())["record"]
    assert rec["stage"] == "refine" and rec["steps"] == 4 and set(rec["held_out_unseen_psnr"]) == {"decoded", "refined"}
    rows = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,heldout_unseen") and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    with pytest.raises(SystemExit, match="other settings"):                # the examples belong to their settings
        main(common[:-4] + ["--refine-episodes", "2"] + common[-2:] + ["--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="refine-episodes"):
        main(common[:-4] + ["--refine-episodes", "0", "--out", str(tmp_path / "c")])
