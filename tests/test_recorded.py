"""camworld.recorded: the validator's errors name the bad file (and --skip-bad counts it), the two importers
(RealEstate10K-style clips, an image folder + one JSON of 4x4 poses) on fixtures made here, planar detection,
the field-of-view crop, and the revisit rule of recorded-data training."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from camworld import geometry as g
from camworld.recorded import DataError, open_dataset, read_video, schema
from camworld.recorded import importers
from camworld.recorded.frames import decode_mp4, fov_crop, read_images


def _rot(yaw, pitch, roll):
    """A camera-to-world rotation in OpenCV axes: level camera at ``yaw``, then pitched and rolled."""
    base = g.planar_to_extrinsics([0, 0, yaw])[:, :3]
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])       # about the camera's x (pitch)
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])       # about the camera's z (roll)
    return base @ Rx @ Rz


def _cameras(F, rng, planar=False):
    c2w = np.tile(np.eye(4), (F, 1, 1))
    for i in range(F):
        c2w[i, :3, :3] = _rot(rng.uniform(-3, 3), 0 if planar else rng.uniform(-0.4, 0.4),
                              0 if planar else rng.uniform(-0.2, 0.2))
        c2w[i, :3, 3] = [rng.uniform(-2, 2), rng.uniform(-2, 2), 1.6 if planar else rng.uniform(1, 2)]
    return c2w


def _frames(F, H, W, seed=0):
    """Smooth colour ramps that move a little per frame (H.264 keeps them within a few levels)."""
    a = np.random.default_rng(seed).uniform(0.5, 3.0, 4)
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([np.stack([(a[0] * xx + 3 * i) % 256, (a[1] * yy) % 256, (a[2] * xx + a[3] * yy) % 256], -1)
                     for i in range(F)]).astype(np.uint8)


@pytest.fixture
def good(tmp_path):
    """A valid data set: video a (mp4, planar), video b (PNG frames, 6-DoF, cameras.json, depth, captions)."""
    rng = np.random.default_rng(1)
    F, H, W = 6, 32, 48
    K = np.broadcast_to(g.intrinsics(H, W), (F, 3, 3))
    ts = np.arange(F) / 30
    schema.write_video(tmp_path / "videos/a", _frames(F, H, W), ts, K, _cameras(F, rng, planar=True))
    schema.write_video(tmp_path / "videos/b", _frames(F, H, W, 1), ts, K, _cameras(F, rng), image_ext=".png",
                       cameras_json=True, depth=np.ones((F, H, W)),
                       captions={"segments": [{"start": 0, "end": F, "text": "hall"}]})
    schema.write_dataset(tmp_path, ["videos/a", "videos/b"])
    return tmp_path


def test_good_data_set_and_planar_detection(good):
    index = open_dataset(good, progress=False, full=True)
    assert [(v.path, v.source, v.planar, v.frames) for v in index.videos] == [("videos/a", "mp4", True, 6),
                                                                              ("videos/b", "images", False, 6)]
    assert not index.planar
    assert open_dataset(good, progress=False, full=True, threads=3).to_dict() == index.to_dict()


def test_short_videos_serve_the_vae_stage_only(good, tmp_path):
    """6 frames at 30 fps are 2 model frames: too few for a DiT sample (a target segment and a frame before it),
    enough for VAE frames."""
    from camworld.data import batch_rng
    from camworld.model import preset
    from camworld.train.recorded import DataConfig, prepare

    cfg = preset("tiny")
    with pytest.raises(SystemExit, match="long enough"):
        prepare(DataConfig(root=str(good)), tmp_path / "dit", False, cfg, log=lambda m: None)
    source = prepare(DataConfig(root=str(good)), tmp_path / "vae", False, cfg, log=lambda m: None, min_frames=1)
    assert source.frames(batch_rng(0, 0), 10, 32).shape == (10, 32, 32, 3)


def _corrupt_mp4(root):
    (root / "videos/a/video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return "video.mp4"


def _truncate_mp4(root):
    p = root / "videos/a/video.mp4"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return "video.mp4"


def _truncate_cameras_json(root):
    p = root / "videos/b/cameras.json"
    p.write_text(p.read_text()[:-40])
    return "cameras.json"


def _truncate_cameras_npz(root):
    p = root / "videos/a/cameras.npz"
    p.write_bytes(p.read_bytes()[:100])
    return "cameras.npz"


def _drop_frame(root):
    sorted((root / "videos/b/frames").iterdir())[-1].unlink()
    return "frames"


def _edit_json(root, fn):
    p = root / "videos/b/cameras.json"
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))
    return "cameras.json"


def _non_rigid(root):
    return _edit_json(root, lambda d: d["c2w"][3].__setitem__(0, [1.1 * x for x in d["c2w"][3][0][:3]] + [0.0]))


def _nan(root):
    return _edit_json(root, lambda d: d["c2w"][2][1].__setitem__(3, float("nan")))


def _reflection(root):
    def flip(d):
        for row in d["c2w"][1][:3]:
            row[0] = -row[0]
    return _edit_json(root, flip)


def _fewer_poses(root):
    def cut(d):
        for k in ("timestamps", "intrinsics", "c2w"):
            d[k] = d[k][:-1]
    return _edit_json(root, cut)


def _bad_depth(root):
    schema.write_npz(root / "videos/b/depth.npz", depth=np.ones((6, 8, 8), np.float32))
    return "depth.npz"


@pytest.mark.parametrize("break_it, message", [
    (_corrupt_mp4, "not a readable video"), (_truncate_mp4, "not a readable video"),
    (_truncate_cameras_json, "not valid JSON"), (_truncate_cameras_npz, "not a readable npz"),
    (_drop_frame, "has 5 frames but cameras.json has 6 cameras"), (_non_rigid, "frame 3 is not a rigid transform"),
    (_nan, "c2w has NaN or inf at frames \\[2\\]"), (_reflection, "reflection"),
    (_fewer_poses, "has 6 frames but cameras.json has 5"), (_bad_depth, "expected float \\(F, H, W\\)"),
])
def test_bad_files_are_named_and_can_be_skipped(good, break_it, message):
    name = break_it(good)
    with pytest.raises(DataError, match=message) as e:
        open_dataset(good, progress=False)
    assert name in str(e.value) and "skip" in str(e.value)
    index = open_dataset(good, progress=False, skip_bad=True)
    assert len(index.videos) == 1 and len(index.skipped) == 1 and name in index.skipped[0][1]


def test_data_error_survives_a_process_boundary():
    import pickle

    e = pickle.loads(pickle.dumps(DataError("videos/a/video.mp4", "truncated")))
    assert isinstance(e, DataError) and e.path.name == "video.mp4" and str(e) == "videos/a/video.mp4: truncated"


def test_data_set_level_errors(tmp_path, good):
    with pytest.raises(DataError, match="dataset.json: missing"):
        open_dataset(tmp_path / "videos", progress=False)
    doc = json.loads((good / "dataset.json").read_text())
    (good / "dataset.json").write_text(json.dumps(dict(doc, version=3)))
    with pytest.raises(DataError, match="newer camworld"):
        open_dataset(good, progress=False)
    (good / "dataset.json").write_text(json.dumps(dict(doc, videos=doc["videos"] + [{"path": "videos/zz"}])))
    with pytest.raises(DataError, match="zz: listed in dataset.json but missing"):
        open_dataset(good, progress=False)
    (good / "videos/a/frames").mkdir()
    (good / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="both video.mp4 and frames"):
        open_dataset(good, progress=False)


def test_full_check_finds_a_corrupt_image_the_fast_check_misses(good):
    p = sorted((good / "videos/b/frames").iterdir())[2]
    p.write_bytes(p.read_bytes()[:60])
    assert len(open_dataset(good, progress=False).videos) == 2
    with pytest.raises(DataError, match="000002.png"):
        open_dataset(good, progress=False, full=True)


# ---------------------------------------------------------------- RealEstate10K


def _re10k_clip(root, name, F=5, W=64, H=36, seed=0, named_by_time=True):
    """A clip file + frame folder as RealEstate10K tools leave them; -> (c2w, K, timestamps_us, frames)."""
    rng = np.random.default_rng(seed)
    c2w = _cameras(F, rng)
    stamps = 1_000_000 + np.arange(F) * 33_367
    fx, fy, cx, cy = 0.9, 1.6, 0.5, 0.48
    lines = [f"https://www.youtube.com/watch?v={name}"]
    for t, E in zip(stamps, c2w):
        w2c = np.linalg.inv(E)[:3]
        lines.append(" ".join([str(t), f"{fx}", f"{fy}", f"{cx}", f"{cy}", "0.0", "0.0"] + [f"{x:.12f}" for x in w2c.ravel()]))
    (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    frames = _frames(F, H, W, seed)
    (root / name).mkdir()
    for i, (t, f) in enumerate(zip(stamps, frames)):
        Image.fromarray(f).save(root / name / (f"{t}.png" if named_by_time else f"img{i:03d}.png"))
    K = np.array([[fx * W, 0, cx * W], [0, fy * H, cy * H], [0, 0, 1]])
    return c2w, K, stamps, frames


def test_import_realestate10k(tmp_path):
    src = tmp_path / "re10k"
    src.mkdir()
    truth = {n: _re10k_clip(src, n, seed=i, named_by_time=(i == 0)) for i, n in enumerate(["clipA", "clipB"])}
    res = importers.import_realestate10k(src, tmp_path / "out", scale=2.0, progress=False)
    assert [v["path"] for v in res["videos"]] == ["videos/clipA", "videos/clipB"] and not res["skipped"]
    index = open_dataset(tmp_path / "out", progress=False)
    assert not index.planar and [v.frames for v in index.videos] == [5, 5]
    for name, (c2w, K, stamps, frames) in truth.items():
        v = read_video(tmp_path / "out" / "videos" / name)
        want = c2w.copy()
        want[:, :3, 3] *= 2.0
        np.testing.assert_allclose(v["c2w"], want, atol=1e-9)
        np.testing.assert_allclose(v["intrinsics"], np.broadcast_to(K, (5, 3, 3)))
        np.testing.assert_allclose(v["timestamps"], stamps / 1e6)
        np.testing.assert_array_equal(v["frames"], frames)


def test_realestate10k_errors_name_the_file_and_line(tmp_path):
    src = tmp_path / "re10k"
    src.mkdir()
    _re10k_clip(src, "good")
    _re10k_clip(src, "short", seed=1)
    lines = (src / "short.txt").read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:-1])             # a truncated line
    (src / "short.txt").write_text("\n".join(lines))
    _re10k_clip(src, "gap", seed=2)
    sorted((src / "gap").iterdir())[1].unlink()             # a frame missing
    with pytest.raises(DataError, match="gap: no frame for 1 of the 5 timestamps"):
        importers.import_realestate10k(src, tmp_path / "o1", progress=False)
    with pytest.raises(DataError, match="short.txt: line 4 has 18 numbers"):
        importers.import_realestate10k(src / "short.txt", tmp_path / "o2", progress=False)
    res = importers.import_realestate10k(src, tmp_path / "o3", skip_bad=True, progress=False)
    assert [v["path"] for v in res["videos"]] == ["videos/good"] and len(res["skipped"]) == 2
    assert json.loads((tmp_path / "o3/dataset.json").read_text())["writer"]["skipped"][0][0] == "gap.txt"


# ---------------------------------------------------------------- image folder + one JSON


def test_import_json_images_transforms_and_mapping(tmp_path):
    F, H, W = 4, 32, 40
    c2w = _cameras(F, np.random.default_rng(3))
    frames = _frames(F, H, W, 3)
    src = tmp_path / "scan"
    (src / "train").mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / "train" / f"r_{i}.png")
    gl = c2w @ importers.OPENGL_TO_OPENCV                      # NeRF / Blender store OpenGL camera axes
    doc = {"camera_angle_x": 0.9, "frames": [{"file_path": f"./train/r_{i}", "transform_matrix": gl[i].tolist()}
                                             for i in range(F)]}
    (src / "transforms.json").write_text(json.dumps(doc))
    importers.import_json_images(src, tmp_path / "out", axes="opengl")
    v = read_video(tmp_path / "out" / "videos" / "scan")
    np.testing.assert_allclose(v["c2w"], c2w, atol=1e-12)
    fx = 0.5 * W / np.tan(0.45)
    np.testing.assert_allclose(v["intrinsics"][0], [[fx, 0, W / 2], [0, fx, H / 2], [0, 0, 1]])
    np.testing.assert_allclose(v["timestamps"], np.arange(F) / 30)
    np.testing.assert_array_equal(v["frames"], frames)
    # the plain mapping {image: 4x4}, OpenCV axes, intrinsics from --hfov
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(F):
        shutil.copy(src / "train" / f"r_{i}.png", flat / f"{i:02d}.png")
    (flat / "poses.json").write_text(json.dumps({f"{i:02d}.png": c2w[i].tolist() for i in range(F)}))
    with pytest.raises(DataError, match="no intrinsics"):
        importers.import_json_images(flat, tmp_path / "o2", axes="opencv")
    importers.import_json_images(flat, tmp_path / "o3", axes="opencv", hfov_deg=60.0, fps=10)
    w = read_video(tmp_path / "o3" / "videos" / "flat")
    np.testing.assert_allclose(w["c2w"], c2w, atol=1e-12)
    np.testing.assert_allclose(w["intrinsics"][0, 0, 0], 0.5 * W / np.tan(np.deg2rad(30)))
    np.testing.assert_allclose(w["timestamps"], np.arange(F) / 10)


def test_json_images_errors(tmp_path):
    src = tmp_path / "scan"
    src.mkdir()
    Image.fromarray(_frames(1, 16, 16)[0]).save(src / "a.png")
    bad = np.eye(4)
    bad[0, 0] = 2.0
    (src / "poses.json").write_text(json.dumps({"a.png": bad.tolist(), "missing.png": np.eye(4).tolist()}))
    with pytest.raises(DataError, match="poses.json: names the image 'missing.png'"):
        importers.import_json_images(src, tmp_path / "o", axes="opencv", hfov_deg=50)
    (src / "poses.json").write_text(json.dumps({"a.png": bad.tolist()}))
    with pytest.raises(DataError, match=r"poses.json: frame 0 \(a.png\): the rotation is not rigid"):
        importers.import_json_images(src, tmp_path / "o", axes="opencv", hfov_deg=50)
    with pytest.raises(ValueError, match="axes"):
        importers.import_json_images(src, tmp_path / "o", axes="blender")


def test_cli_import_and_check(tmp_path, capsys):
    from camworld.cli import main

    src = tmp_path / "re10k"
    src.mkdir()
    _re10k_clip(src, "clip")
    assert main(["dataset", "import", "realestate10k", str(src), str(tmp_path / "out")]) == 0
    assert "imported 1 videos" in capsys.readouterr().out
    assert main(["dataset", "check", str(tmp_path / "out"), "--full"]) == 0
    assert "full 6-DoF" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--axes"):
        main(["dataset", "import", "json-images", str(src / "clip"), str(tmp_path / "o2")])


# ---------------------------------------------------------------- frames: field of view, crop and resize


def test_fov_crop_and_both_readers_agree(tmp_path):
    assert fov_crop(g.intrinsics(64, 64), 64, 64, g.DEFAULT_HFOV_DEG)[:3] == (0, 0, 64)   # the sim: nothing to crop
    K = g.intrinsics(64, 96, 90.0)                 # a wide 96x64 camera: crop the middle to the model's 52.67 degrees
    x0, y0, side, covered = fov_crop(K, 96, 64, g.DEFAULT_HFOV_DEG)
    assert side == round(2 * K[0, 0] * np.tan(np.deg2rad(g.DEFAULT_HFOV_DEG) / 2)) and (x0, y0) == ((96 - side) // 2, (64 - side) // 2)
    assert abs(covered - g.DEFAULT_HFOV_DEG) < 1.0
    frames = _frames(6, 64, 96)
    ts = np.arange(6) / 30
    schema.write_video(tmp_path / "m", frames, ts, np.broadcast_to(K, (6, 3, 3)), np.tile(np.eye(4), (6, 1, 1)))
    schema.write_video(tmp_path / "i", frames, ts, np.broadcast_to(K, (6, 3, 3)), np.tile(np.eye(4), (6, 1, 1)),
                       image_ext=".png")
    a = decode_mp4(tmp_path / "m" / "video.mp4", [4, 1, 4], (x0, y0, side), 16, 96, 64)
    b = read_images([sorted((tmp_path / "i" / "frames").iterdir())[i] for i in (4, 1, 4)], (x0, y0, side), 16)
    assert a.shape == b.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(a[0], a[2])
    assert np.abs(a.astype(int) - b).mean() < 3                    # same crop, same area resize (mp4 is lossy)
    with pytest.raises(DataError, match="truncated: decoded 6 frames, frame 9"):
        decode_mp4(tmp_path / "m" / "video.mp4", [9], (x0, y0, side), 16, 96, 64)


def test_revisit_rule():
    from camworld.sim.trajectories import turn_and_back
    from camworld.train.recorded import revisit_frames

    there_back = g.planar_to_extrinsics(turn_and_back(np.zeros(3), np.pi, 10.0))        # 37 frames
    E = np.concatenate([there_back, np.broadcast_to([0, 0, 0, 1.0], (37, 1, 4))], 1)
    rv = revisit_frames(E, 0.5, 17.0)
    assert rv[:16].all() and rv[21:].all() and not rv[17:20].any()   # out and back see each other; the top does not
    spin = g.planar_to_extrinsics(np.stack([np.zeros(30), np.zeros(30), np.linspace(0, 5, 30)], 1))   # one way round
    E = np.concatenate([spin, np.broadcast_to([0, 0, 0, 1.0], (30, 1, 4))], 1)
    assert not revisit_frames(E, 0.5, 17.0).any()
    still = np.tile(E[:1], (10, 1, 1))
    assert not revisit_frames(still, 0.5, 17.0).any()


def test_seeking_reads_the_counted_frames(tmp_path):
    from camworld.recorded.frames import probe_mp4, seekable

    F = 80
    schema.write_video(tmp_path / "v", _frames(F, 32, 32), np.arange(F) / 7.5, np.broadcast_to(g.intrinsics(32, 32),
                       (F, 3, 3)), np.tile(np.eye(4), (F, 1, 1)))
    mp4 = tmp_path / "v" / "video.mp4"
    info = probe_mp4(mp4)
    assert info["frames"] == F and info["cfr_fps"] == 7.5
    assert seekable(mp4, F, 32, 32, info["cfr_fps"]) == 7.5
    crop = (0, 0, 32)
    idx = [31, 25, 39, 25]
    np.testing.assert_array_equal(decode_mp4(mp4, idx, crop, 16, 32, 32, seek_fps=7.5), decode_mp4(mp4, idx, crop, 16, 32, 32))
    schema.write_dataset(tmp_path, ["v"])
    assert open_dataset(tmp_path, progress=False).videos[0].seek_fps == 7.5


def test_retrieval_is_planar_for_level_cameras_and_6dof_otherwise():
    """Two memory frames at one spot and yaw, one level, one looking at the sky: (x, y, yaw) cannot tell them
    apart, the 6-DoF path can, and recorded training uses it for cameras that are not planar."""
    from camworld.train.recorded import retrieve_context

    def cam(x, yaw, pitch=0.0):
        E = np.eye(4)
        E[:3, :3], E[:3, 3] = _rot(yaw, pitch, 0.0), [x, 0.0, 1.6]
        return E

    mem = np.stack([cam(0, 0), cam(0, 0, pitch=-1.2), cam(30, np.pi)])   # level, up at the sky, far away (newest)
    tgt = np.stack([cam(-1.0, 0)])
    times = np.array([0.0, 1.0, 2.0])
    six = {int(retrieve_context("fov+nonadj", mem, times, tgt, 2, np.random.default_rng(s), planar=False)[0])
           for s in range(16)}
    flat = {int(retrieve_context("fov+nonadj", mem, times, tgt, 2, np.random.default_rng(s), planar=True)[0])
            for s in range(16)}
    assert six == {0} and flat == {0, 1}


def test_training_samples_from_an_imported_6dof_clip(tmp_path):
    """RealEstate10K-style 30 fps clip (64x36 PNG, 6-DoF) -> model frames every 4th frame, cropped and resized to
    32x32, context retrieved by the 6-DoF rule; the field-of-view mismatch is logged."""
    from camworld.data import batch_rng
    from camworld.model import preset
    from camworld.train.recorded import DataConfig, prepare

    src = tmp_path / "re10k"
    src.mkdir()
    _re10k_clip(src, "clip", F=30)
    importers.import_realestate10k(src, tmp_path / "data", progress=False)
    logs = []
    cfg = preset("tiny")
    source = prepare(DataConfig(root=str(tmp_path / "data")), tmp_path / "run", False, cfg, log=logs.append)
    text = "\n".join(logs)
    assert "stride [4]" in text and "6-DoF frustum rule" in text and "cover 33.8 degrees" in text
    assert source.cameras == "6dof"                  # what the DiT's checkpoint record will say
    batch = source.batch(batch_rng(0, 0), cfg.train, cfg.frame_size)
    assert batch.tgt_frames.shape == (4, 2, 32, 32, 3) and batch.ctx_mask[:, -1].all()
    assert batch.tgt_frames.std() > 10                     # real pixels, not padding
