"""Reprojection of a frame to a nearby camera: the start of a warp-initialised sample.

At env speed the next frame is a small warp of the newest one (<= 3.1 degrees and 0.31 m per frame).
The DiT sees 4x4-latent patches (16x16 pixels each), so a sub-token shift has to be carried inside token
features, and from pure noise it comes out blurred. A warp of the newest frame to the target camera puts
that shift into the sample's start instead: the sampler begins at flow time ``start`` from
``(1 - start) * encode(warp) + start * noise`` (SDEdit), so the network keeps the warp's layout and
repaints what the warp gets wrong (disoccluded strips, parallax, the frame edge).

Depth is unknown in a learned world, so the warp assumes it: a flat floor at the camera's height where a
ray points down, else a fronto-parallel plane at ``depth`` metres. For a pure rotation the warp is exact
whatever the depth (a homography); for translation it is as wrong as the assumed depth.

The same reprojection also pastes pixels (``reproject``, the learned world's ``warp_paste``): the frame the
network returns keeps the context's own pixels wherever a context camera saw the target pixel, and the
network's pixels only where none did. The VAE's round trip (about 27.6 dB on this data) no longer caps what
the world shows of a place it has seen, and a return shows the frame it remembers. Each target pixel is
taken from one context frame: an observed one (``MemoryBank.observed``) if any saw it, since a generated
frame's pasted pixels were already resampled once (bilinear, a blur) and chains of them lose detail
quickly, else the one nearest its camera (``camera_distance``).

With a learned depth (``camworld.model.depth``) each context frame has its own: ``source_points`` lifts its
pixels to the world, ``splat_depth`` forward-projects them into each target camera with a z-buffer, and the
target pixels take that depth (``own_depth``, ``depth_points``) where the frame saw them and are unseen by
it elsewhere (a disocclusion, or outside its view).

Conventions are ``camworld.geometry``'s: camera-to-world [R|t], OpenCV axes (x right, y down, z forward),
world z up with the floor at z = 0, square pixels, principal point at the image centre.
Letters: B worlds, T target frames, S frame size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from camworld.geometry import focal_from_hfov, pixel_rays


def warp_grid(src_ext, tgt_ext, size: int, hfov_deg: float, depth: float = 6.0, floor: bool = True) -> np.ndarray:
    """Sampling grid (B, T, S, S, 2) in ``grid_sample``'s [-1, 1] coordinates: where each target pixel's
    assumed scene point lands in the source camera. src_ext (B, 3, 4) (one source per world) or
    (B, T, 3, 4) (one per target), tgt_ext (B, T, 3, 4).
    Points behind the source camera get coordinates outside [-1, 1] (filled from the border).
    ``floor``: rays that point down meet the ground plane z = 0 (the sim's convention) if nearer than ``depth``;
    False (cameras of recorded data, whose world frame may put the ground anywhere): the plane alone."""
    if not depth > 0:
        raise ValueError(f"warp depth must be > 0 metres, got {depth}")
    src = np.asarray(src_ext, np.float64)
    tgt = np.asarray(tgt_ext, np.float64)
    if tgt.ndim != 4 or tgt.shape[2:] != (3, 4) or src.shape[-2:] != (3, 4) or src.ndim not in (3, 4) \
            or src.shape[0] != tgt.shape[0] or (src.ndim == 4 and src.shape[1] != tgt.shape[1]):
        raise ValueError(f"warp_grid takes src_ext (B, 3, 4) or (B, T, 3, 4) and tgt_ext (B, T, 3, 4), got "
                         f"{src.shape} and {tgt.shape}")
    if src.ndim == 3:
        src = np.broadcast_to(src[:, None], tgt.shape)
    return _grid(torch.from_numpy(np.array(src)), torch.from_numpy(np.array(tgt)), size, hfov_deg, depth,
                 floor).numpy()


def _grid(src: torch.Tensor, tgt: torch.Tensor, size: int, hfov_deg: float, depth: float, floor: bool):
    """``warp_grid``'s arithmetic in float64 torch matmuls (numpy's einsum over every pixel was ~6x slower)."""
    B, T = tgt.shape[:2]
    X = _scene_points(tgt, size, hfov_deg, depth, floor)             # (B, T, S*S, 3)
    return _project(X, src, size, hfov_deg).reshape(B, T, size, size, 2)


def _scene_points(tgt: torch.Tensor, size: int, hfov_deg: float, depth: float, floor: bool) -> torch.Tensor:
    """(B, T, S*S, 3) world points the target cameras (B, T, 3, 4) see under the assumed depth, in tgt's dtype."""
    rays = torch.from_numpy(pixel_rays(size, size, hfov_deg)).to(tgt.dtype).reshape(1, 1, -1, 3)  # z = 1
    R_t, c_t = tgt[..., :3], tgt[..., 3]                             # (B, T, 3, 3), (B, T, 3)
    d = rays @ R_t.transpose(-1, -2)                                 # (B, T, S*S, 3) world direction per z-depth
    z = torch.full(d.shape[:-1], float(depth), dtype=d.dtype)
    if floor:
        down = d[..., 2] < -1e-6
        ground = -c_t[..., 2:3] / torch.where(down, d[..., 2], torch.full_like(d[..., 2], -1.0))
        z = torch.where(down & (ground > 0), torch.minimum(z, ground), z)   # the ray meets z = 0 first
    return c_t[:, :, None] + z[..., None] * d


def _project(X: torch.Tensor, src: torch.Tensor, size: int, hfov_deg: float) -> torch.Tensor:
    """World points X (..., N, 3) into source cameras src (..., 3, 4): grid_sample coordinates (..., N, 2);
    points behind the camera land far outside [-1, 1]."""
    R_s, c_s = src[..., :3], src[..., 3]
    return _grid_of((X - c_s[..., None, :]) @ R_s, size, hfov_deg)   # in the source camera: R_s^T (X - c_s)


def _grid_of(p: torch.Tensor, size: int, hfov_deg: float) -> torch.Tensor:
    """Camera-frame points p (..., N, 3) -> grid_sample coordinates (..., N, 2); behind the camera: far outside."""
    f = focal_from_hfov(size, hfov_deg)
    ahead = p[..., 2] > 1e-3
    pz = torch.where(ahead, p[..., 2], torch.ones_like(p[..., 2]))
    far = torch.full_like(pz, 1e3)
    u = torch.where(ahead, f * p[..., 0] / pz, far)                  # pixels from the centre
    v = torch.where(ahead, f * p[..., 1] / pz, far)
    return torch.stack([u, v], -1) / (size / 2.0)                    # align_corners=False: edge = +-1


def _project_at_depth(tgt: torch.Tensor, z: torch.Tensor, src: torch.Tensor, size: int, hfov_deg: float) -> torch.Tensor:
    """``_project`` of the target cameras' (..., 3, 4) pixels at z-depth z (..., N) into source cameras src
    (..., 3, 4), in one step: the source-camera point of a target ray r at depth z is
    R_s^T (c_t - c_s) + z R_s^T R_t r, so no world points are made."""
    rays = torch.from_numpy(pixel_rays(size, size, hfov_deg)).to(z.dtype).reshape(-1, 3)   # z = 1
    R_s, c_s, R_t, c_t = src[..., :3], src[..., 3], tgt[..., :3], tgt[..., 3]
    a = ((c_t - c_s)[..., None, :] @ R_s)                              # (..., 1, 3)
    q = rays @ (R_s.transpose(-1, -2) @ R_t).transpose(-1, -2)         # (..., N, 3)
    return _grid_of(a + z[..., None] * q, size, hfov_deg)


def _sample(frames: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of frames (N, 3, S, S) at grid (N, S, S, 2), the border repeated outside [-1, 1]."""
    return F.grid_sample(frames, grid.to(frames.dtype), mode="bilinear", padding_mode="border", align_corners=False)


FILLS = ("border", "smooth", "mirror", "rows")


def fill_unseen(img: torch.Tensor, known: torch.Tensor, along_x: bool = False) -> torch.Tensor:
    """Fill the pixels of img (N, C, S, S) where known (N, 1, S, S; 1 = known, 0 = hole) is 0 from the known
    pixels around them (push-pull: mask-weighted 2x2 averages down a pyramid, bilinear back up; known pixels
    stay as they are). A frame with no known pixel comes back 0. S a power of 2. ``along_x``: average 2
    neighbouring columns only (1x2), so a hole takes the known pixels of its own row (a row without any: 0)."""
    if img.shape[-1] <= 1 or bool(known.min() > 0):
        return img
    k = (1, 2) if along_x else 2
    a, w = F.avg_pool2d(img * known, k), F.avg_pool2d(known, k)
    low = fill_unseen(a / w.clamp_min(1e-6), (w > 0).to(img.dtype), along_x)
    up = F.interpolate(low, size=img.shape[-2:], mode="bilinear", align_corners=False)
    return known * img + (1 - known) * up


def fill_rows(img: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill the pixels of img (N, C, S, S) where known (N, 1, S, S) is 0 from the known pixels of their own row
    (``fill_unseen`` along x only), so a strip a turn uncovers carries on each row's colours: the ceiling, wall and
    floor bands of a level camera stay where they are, where the 2D fill mixes them into one haze. Rows without a
    known pixel fall back to ``fill_unseen``. Known pixels stay as they are. S a power of 2."""
    if img.shape[-1] <= 1 or bool(known.min() > 0):
        return img
    out = fill_unseen(img, known, along_x=True)
    row_known = (known.amax(-1, keepdim=True) > 0).to(img.dtype).expand_as(known)
    return out if bool(row_known.min() > 0) else fill_unseen(out, row_known)


def nearest_known(known: torch.Tensor) -> torch.Tensor:
    """For every pixel of masks known (N, S, S) bool, the (row, col) of a nearest known pixel (jump flooding:
    exact for convex holes, within a pixel elsewhere) -> long (N, 2, S, S); frames without a known pixel point
    at themselves."""
    N, S, _ = known.shape
    dev = known.device
    yy, xx = torch.meshgrid(torch.arange(S, device=dev), torch.arange(S, device=dev), indexing="ij")
    here = torch.stack([yy, xx])[None].expand(N, 2, S, S)
    far = torch.full_like(here, 10 * S)
    best = torch.where(known[:, None], here, far)
    step = S // 2
    while step >= 1:
        for dy in (-step, 0, step):
            for dx in (-step, 0, step):
                if dy == 0 and dx == 0:
                    continue
                cand = torch.roll(best, shifts=(dy, dx), dims=(2, 3))
                # rolled in from the other side of the frame: not a neighbour
                valid = torch.ones(S, S, dtype=torch.bool, device=dev)
                if dy > 0:
                    valid[:dy] = False
                elif dy < 0:
                    valid[dy:] = False
                if dx > 0:
                    valid[:, :dx] = False
                elif dx < 0:
                    valid[:, dx:] = False
                d_best = ((best - here) ** 2).sum(1)
                d_cand = ((cand - here) ** 2).sum(1)
                take = (d_cand < d_best) & valid
                best = torch.where(take[:, None], cand, best)
        step //= 2
    return torch.where(best >= 10 * S, here, best)


def mirror_unseen(img: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill the pixels of img (N, C, S, S) where known (N, 1, S, S) is 0 with the seen texture reflected across
    the nearest seen pixel q: pixel p takes img at 2q - p where that was seen, else at q (the border); seen
    pixels stay as they are. Keeps the texture's sharpness where ``fill_unseen`` keeps only its colours."""
    kn = known[:, 0] > 0.5
    if bool(kn.all()):
        return img
    N, C, S, _ = img.shape
    q = nearest_known(kn)                                                     # (N, 2, S, S)
    yy, xx = torch.meshgrid(torch.arange(S, device=img.device), torch.arange(S, device=img.device), indexing="ij")
    p = torch.stack([yy, xx])[None]
    r = (2 * q - p).clamp(0, S - 1)
    flat = lambda a: (a[:, 0] * S + a[:, 1]).reshape(N, 1, S * S)
    r_ok = kn.reshape(N, -1).gather(1, flat(r)[:, 0]).reshape(N, 1, S, S)
    src = torch.where(r_ok, flat(r).reshape(N, 1, S, S), flat(q).reshape(N, 1, S, S)).reshape(N, 1, S * S)
    out = img.reshape(N, C, S * S).gather(2, src.expand(N, C, S * S)).reshape(N, C, S, S)
    return torch.where(kn[:, None], img, out)


def fill_holes(img: torch.Tensor, known: torch.Tensor, fill: str) -> torch.Tensor:
    """img (N, C, S, S) where known (N, 1, S, S) is 0 filled as ``fill`` says (``FILLS``): "border" leaves it
    as it is, "smooth" ``fill_unseen``, "mirror" ``mirror_unseen``, "rows" ``fill_rows``."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "border":
        return img
    return {"smooth": fill_unseen, "mirror": mirror_unseen, "rows": fill_rows}[fill](img, known)


def warp_frames(frames: torch.Tensor, src_ext, tgt_ext, hfov_deg: float, depth: float = 6.0,
                floor: bool = True, seen: bool = False, points: torch.Tensor | None = None, fill: str = "border"):
    """Warp source frames float (B, 3, S, S) (one per world; src_ext (B, 3, 4)) or (B, T, 3, S, S) (one per
    target; src_ext (B, T, 3, 4)) to the target cameras tgt_ext (B, T, 3, 4): -> (B, T, 3, S, S), bilinear,
    border pixels repeated where the target sees beyond the source frame. ``seen``: also return bool
    (B, T, S, S), True where the source frame saw the target pixel (not a repeated border). ``points``: the
    target pixels' scene points (B, T, P*P, 3) (a learned depth, ``camworld.model.depth``) instead of the
    assumed depth's; src_ext then (B, T, 3, 4); P = S, or a multiple of it (frames at a coarser size, such as
    latents: each cell samples at the mean of its pixels' source coordinates, and is seen where all of them were).
    ``fill``: what a target pixel the source did not see shows:
    "border" (the nearest border pixel of the source, repeated: streaks), "smooth" (``fill_unseen`` from the
    seen pixels around it), "mirror" (``mirror_unseen``: the seen texture reflected into it) or "rows"
    (``fill_rows``: from the seen pixels of the same row)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    S = frames.shape[-1]
    if points is None:
        grid = torch.as_tensor(warp_grid(src_ext, tgt_ext, S, hfov_deg, depth, floor), device=frames.device)
        hit = (grid.abs() <= 1.0).all(-1)
    else:                                   # float64 arithmetic, then the frames' dtype (in _sample)
        P = math.isqrt(points.shape[2])     # the points' resolution; grid coordinates do not depend on it
        if P * P != points.shape[2] or P % S:
            raise ValueError(f"points hold {points.shape[2]} pixels a frame: not a square grid that {S}x{S} "
                             f"frames divide")
        grid = _project(points.double(), torch.as_tensor(np.asarray(src_ext, np.float64)).to(points.device), P,
                        hfov_deg).reshape(points.shape[0], points.shape[1], P, P, 2).to(frames.device)
        hit = (grid.abs() <= 1.0).all(-1)
        if P != S:   # coarser frames (latents): each cell samples at the mean of its pixels' coordinates, and
            c = P // S                      # counts as seen only where the source saw all of its pixels
            pool = lambda x: F.avg_pool2d(x.flatten(0, 1), c).reshape(*x.shape[:2], -1, S, S)  # noqa: E731
            grid = pool(grid.clamp(-2.0, 2.0).permute(0, 1, 4, 2, 3)).permute(0, 1, 3, 4, 2)
            hit = pool(hit[:, :, None].double())[:, :, 0] > 1 - 1e-9
    B, T = grid.shape[:2]
    src = frames[:, None].expand(B, T, *frames.shape[1:]) if frames.ndim == 4 else frames
    out = _sample(src.reshape(B * T, *src.shape[2:]), grid.reshape(B * T, S, S, 2)).reshape(B, T, *src.shape[2:])
    out = fill_holes(out.flatten(0, 1), hit.flatten(0, 1)[:, None].to(out.dtype), fill).reshape(out.shape)
    return (out, hit) if seen else out


# an observed frame's pixel wins over any generated frame's (camera distances are metres plus 3 m per radian)
OBSERVED_FIRST = 1e6
# ... except a context frame taken from the target camera itself, which wins over all: a return to a pose shows
# the frame the world showed there, whatever depth the reprojection would assume
SAME_CAMERA = 1e-6
_PASTE_DTYPE = torch.float32   # float32 geometry: a pasted pixel moves ~1e-4 pixels against float64


def reproject(frames: torch.Tensor, ctx_ext, ctx_mask, ctx_observed, tgt_ext, hfov_deg: float, depth: float = 6.0,
              floor: bool = True, src_points: torch.Tensor | None = None, fallback: bool = False) -> tuple:
    """Paste the context's pixels into the target cameras (the module doc): each target pixel from one
    context frame that saw it: one taken from the target camera itself first, then observed frames, then the
    nearest camera (ties: the newest slot).

    frames float (B, k, 3, S, S) in [-1, 1]; ctx_ext (B, k, 3, 4); ctx_mask (B, k) bool (False: padding,
    never used); ctx_observed (B, k) bool; tgt_ext (B, T, 3, 4).
    ``src_points``: a learned depth (``camworld.model.depth``): the context frames' pixels lifted to the world
    (B, k, n, 3) (``source_points``; n = s*s, s dividing S): each frame is reprojected at its own depth
    (``own_depth``), and gives a target pixel only where it saw it; None: the assumed depth.
    -> (pixels (B, T, 3, S, S), seen bool (B, T, S, S): False where no context frame saw the pixel).
    The slots are taken best first, each only for the targets with pixels still unseen.
    ``fallback`` (a warp start from the composite): also fill what no frame saw with the best slot's pixels at the
    assumed depth where they fall inside that frame, and return (pixels, seen, filled bool (B, T, S, S)): under a
    learned depth a start without content where nothing was seen made the network draw uniform frames (2 of 16
    episodes at 7-16 dB)."""
    ctx_ext, tgt_ext = np.asarray(ctx_ext, np.float64), np.asarray(tgt_ext, np.float64)
    B, k, _, S, _ = frames.shape
    T = tgt_ext.shape[1]
    if ctx_ext.shape != (B, k, 3, 4) or tgt_ext.shape[0] != B or np.shape(ctx_mask) != (B, k) \
            or np.shape(ctx_observed) != (B, k):
        raise ValueError(f"reproject takes frames (B, k, 3, S, S), ctx_ext (B, k, 3, 4), ctx_mask and ctx_observed "
                         f"(B, k), tgt_ext (B, T, 3, 4); got {tuple(frames.shape)}, {ctx_ext.shape}, "
                         f"{np.shape(ctx_mask)}, {np.shape(ctx_observed)}, {tgt_ext.shape}")
    if src_points is not None and tuple(src_points.shape[:2]) != (B, k):
        raise ValueError(f"src_points must be (B, k, n, 3) = ({B}, {k}, n, 3), got {tuple(src_points.shape)}")
    dist = camera_distance(ctx_ext[:, None], tgt_ext[:, :, None])                       # (B, T, k)
    rank = np.where(dist < SAME_CAMERA, -1.0, dist + OBSERVED_FIRST * ~np.asarray(ctx_observed, bool)[:, None])
    usable = np.broadcast_to(np.asarray(ctx_mask, bool)[:, None], rank.shape)
    # best first: rank ascending, and on ties the newer slot first (the newest wins)
    order = np.lexsort((np.broadcast_to(np.arange(k), rank.shape), -np.where(usable, rank, np.inf)), axis=-1)[..., ::-1]
    dev = frames.device
    # float32 geometry: a pasted pixel moves by ~1e-4 pixels against float64 (the warp start keeps float64)
    tgt = torch.as_tensor(tgt_ext, dtype=_PASTE_DTYPE)
    X = _scene_points(tgt, S, hfov_deg, depth, floor)                                     # (B, T, N, 3)
    out = torch.zeros(B, T, 3, S, S, dtype=frames.dtype, device=dev)
    seen = torch.zeros(B, T, S, S, dtype=torch.bool, device=dev)
    src_ext = torch.as_tensor(ctx_ext, dtype=_PASTE_DTYPE)
    pts = None if src_points is None else src_points.to(_PASTE_DTYPE).cpu()
    for i in range(k):
        slot = order[..., i]                                                                # (B, T)
        todo = usable[np.arange(B)[:, None], np.arange(T)[None], slot] & ~seen.flatten(2).all(-1).cpu().numpy()
        if not todo.any():
            continue
        rb, rt = np.nonzero(todo)                                                          # the rows still to fill
        rs = slot[rb, rt]
        known = None
        if pts is None:
            grid = _project(X[rb, rt], src_ext[rb, rs], S, hfov_deg)
        else:                                                         # the slot's own depth, where it saw
            z, known = own_depth(pts[rb, rs], tgt[rb, rt], S, hfov_deg)
            grid = _project_at_depth(tgt[rb, rt], z, src_ext[rb, rs], S, hfov_deg)
        grid = grid.to(dev).reshape(-1, S, S, 2)
        px = _sample(frames[rb, rs], grid)                                                 # (R, 3, S, S)
        hit = (grid.abs() <= 1.0).all(-1) & ~seen[rb, rt]
        if known is not None:
            hit &= known.reshape(-1, S, S).to(dev)
        out[rb, rt] = torch.where(hit[:, None], px, out[rb, rt])
        seen[rb, rt] |= hit
    if not fallback:
        return out, seen
    filled = seen.clone()
    rb, rt = np.nonzero(~seen.flatten(2).all(-1).cpu().numpy())          # targets with pixels no frame saw
    if len(rb):
        rs = order[..., 0][rb, rt]                                        # the best slot, at the assumed depth
        grid = _project(X[rb, rt], src_ext[rb, rs], S, hfov_deg).to(dev).reshape(-1, S, S, 2)
        hit = (grid.abs() <= 1.0).all(-1) & ~seen[rb, rt]
        out[rb, rt] = torch.where(hit[:, None], _sample(frames[rb, rs], grid), out[rb, rt])
        filled[rb, rt] |= hit
    return out, seen, filled


def source_points(src_ext: torch.Tensor, z: torch.Tensor, size: int, hfov_deg: float) -> torch.Tensor:
    """World points (..., S*S, 3) of every pixel of source frames at cameras src_ext (..., 3, 4), each at its
    own z-depth z (..., S*S) (metres along the optical axis; a depth net's, ``camworld.model.depth``)."""
    rays = torch.from_numpy(pixel_rays(size, size, hfov_deg)).to(z.dtype).to(z.device).reshape(-1, 3)  # z = 1
    d = rays @ src_ext[..., :3].transpose(-1, -2)                    # (..., S*S, 3) world direction per z-depth
    return src_ext[..., None, :, 3] + z[..., None] * d


def splat_depth(points: torch.Tensor, tgt_ext: torch.Tensor, size: int, hfov_deg: float) -> tuple:
    """A source frame's own depth seen from a target camera: forward-project the source pixels' world points
    (..., n, 3) (``source_points``) into target cameras tgt_ext (..., 3, 4) (the same leading shape) with
    side ``size`` (n = size**2 or any n) and keep the nearest surface per target pixel (a z-buffer: each
    point lands on its nearest pixel, so the source camera gets its own depth back; then cracks up to 2 pixels
    wide take the nearest neighbour's depth. On sim walks with the true depth this matches a 2x2 footprint
    within 0.2 dB and costs a quarter of its scatter).
    -> (z (..., size**2) target z-depth, known bool (..., size**2): False where no source pixel landed:
    outside the source's view, or behind what it saw)."""
    lead, n = points.shape[:-2], points.shape[-2]
    P = points.reshape(-1, n, 3)
    M = P.shape[0]
    E = tgt_ext.reshape(M, 3, 4).to(P.dtype)
    p = (P - E[:, None, :, 3]) @ E[:, :, :3]                          # (M, n, 3) target camera coordinates
    f = focal_from_hfov(size, hfov_deg)
    ahead = p[..., 2] > 1e-3
    pz = torch.where(ahead, p[..., 2], torch.ones_like(p[..., 2]))
    cu = torch.round(f * p[..., 0] / pz + size / 2.0 - 0.5)           # the nearest pixel (centres at integers)
    cv = torch.round(f * p[..., 1] / pz + size / 2.0 - 0.5)
    N = size * size
    base = torch.arange(M, device=P.device)[:, None] * N
    buf = torch.full((M * N + 1,), float("inf"), dtype=p.dtype, device=P.device)   # the last: off-screen points
    ok = ahead & (cu >= 0) & (cu < size) & (cv >= 0) & (cv < size)
    idx = torch.where(ok, base + (cv * size + cu).long().clamp(0, N - 1), torch.full_like(base, M * N))
    buf.scatter_reduce_(0, idx.reshape(-1), p[..., 2].reshape(-1), reduce="amin")
    z = buf[:-1].reshape(M, 1, size, size)
    big = torch.where(torch.isfinite(z), z, torch.full_like(z, 1e9))
    near = -F.max_pool2d(-big, 3, 1, 1)                               # the nearest surface around each pixel
    z = torch.where(torch.isfinite(z), z, torch.where(near < 1e8, near, torch.full_like(z, float("inf"))))
    known = torch.isfinite(z)
    return z.reshape(*lead, N), known.reshape(*lead, N)


def own_depth(src_points: torch.Tensor, tgt_ext: torch.Tensor, size: int, hfov_deg: float) -> tuple:
    """A source frame's own depth at a target camera, at the frame side ``size`` (``splat_depth``):
    src_points (..., n, 3) of a source of side s (n = s*s; ``source_points``), tgt_ext (..., 3, 4)
    -> (z (..., N) target z-depth, known bool (..., N)), N = size**2. A depth coarser than the frames
    (s < size: a depth net run at a smaller side) is splatted at its own side, then each target pixel takes
    the depth of the coarse pixel it lies in."""
    n = src_points.shape[-2]
    s = int(round(n ** 0.5))
    if s * s != n or size % s:
        raise ValueError(f"source depths of {n} pixels are not a square side dividing the frame side {size}")
    z, known = splat_depth(src_points, tgt_ext, s, hfov_deg)
    if s != size:
        lead, f = z.shape[:-1], size // s
        up = lambda a: a.reshape(-1, s, 1, s, 1).expand(-1, s, f, s, f).reshape(*lead, size * size)
        z, known = up(z), up(known)
    return z, known


def depth_points(tgt_ext: torch.Tensor, z: torch.Tensor, known: torch.Tensor, fallback: torch.Tensor,
                 hfov_deg: float) -> torch.Tensor:
    """The target pixels' scene points (..., N, 3) at z-depth z (..., N) where known (..., N), else
    fallback's (..., N, 3) (the assumed depth's, ``_scene_points``). tgt_ext (..., 3, 4)."""
    size = int(round(z.shape[-1] ** 0.5))
    rays = torch.from_numpy(pixel_rays(size, size, hfov_deg)).to(fallback.dtype).to(z.device).reshape(-1, 3)
    E = tgt_ext.to(fallback.dtype)
    d = rays @ E[..., :3].transpose(-1, -2)                                  # (..., N, 3) per unit z-depth
    X = E[..., None, :, 3] + torch.where(known, z, torch.ones_like(z)).to(d.dtype)[..., None] * d
    return torch.where(known[..., None], X, fallback)


def camera_distance(a, b, metres_per_radian: float = 3.0) -> np.ndarray:
    """How far apart cameras are for a warp: centre distance plus ``metres_per_radian`` times the angle
    between their orientations. a (..., 3, 4), b (..., 3, 4) broadcast."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (np.einsum("...ji,...ji->...", a[..., :3], b[..., :3]) - 1.0) / 2.0  # trace(Ra^T Rb)
    angle = np.arccos(np.clip(cos, -1.0, 1.0))
    return np.linalg.norm(a[..., 3] - b[..., 3], axis=-1) + metres_per_radian * angle


def nearest_sources(ctx_ext, ctx_mask, tgt_ext, metres_per_radian: float = 3.0) -> np.ndarray:
    """For each target camera, the context frame nearest to it (``camera_distance``): int (B, T) slots into
    the context (B, k). Ties go to the newest slot (the last); padded slots (mask False) are never picked.
    ctx_ext (B, k, 3, 4), ctx_mask (B, k) bool, tgt_ext (B, T, 3, 4)."""
    d = camera_distance(np.asarray(ctx_ext)[:, None], np.asarray(tgt_ext)[:, :, None], metres_per_radian)
    d = np.where(np.asarray(ctx_mask, bool)[:, None], d, np.inf)           # (B, T, k)
    return (d.shape[-1] - 1) - np.argmin(d[..., ::-1], axis=-1)         # reversed: the first minimum is the newest

