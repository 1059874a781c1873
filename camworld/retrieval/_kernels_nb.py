"""The compiled kernels of ``_kernels`` (imported only there, on first use: this module imports numba).
Module-level functions, so that ``cache=True`` can reuse them across processes (closures are not cached)."""

import numba
import numpy as np

from camworld.retrieval.index import EPS_ANG, EPS_POS, LINE_GAP, REJECT, TEST

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
two_pi = 2.0 * np.pi
pi = np.pi
inv_two_pi = 1.0 / two_pi


# ---------------------------------------------------------------------------------- scalar helpers


@jit
def arc_meet(s1, l1, s2, l2):
    d = s2 - s1 - two_pi * np.floor((s2 - s1 + pi) * inv_two_pi)
    lo = max(0.0, d)
    hi = min(l1, d + l2)
    s, ln = s1 + lo, hi - lo
    if l1 >= two_pi:
        s, ln = s2, l2
    elif l2 >= two_pi:
        s, ln = s1, l1
    if l1 < 0 or l2 < 0:
        ln = -1.0
    return s, ln


@jit
def contains(s, ln, a):
    if ln >= two_pi:
        return True
    v = a - s + EPS_ANG
    return ln >= 0 and v - two_pi * np.floor(v / two_pi) <= ln + 2 * EPS_ANG


@jit
def blur(r, d):
    x = min(r / max(d, 1e-300), 1.0)
    if x < 0.999:
        return x / np.sqrt(max(1.0 - x * x, 1e-12))
    return 2 * two_pi


@jit
def add_arc(diff, row, s, ln, sure, B, w):
    """One arc's bins into row ``row`` of an int32 difference array (B + 1 wide); ``index._bins``."""
    if ln < 0:
        return
    if sure:
        lo = np.ceil((s + EPS_ANG) / w)
        n = np.floor((s + ln - EPS_ANG) / w) - lo
    else:
        lo = np.floor((s - EPS_ANG) / w)
        n = np.floor((s + ln + EPS_ANG) / w) - lo + 1
    if ln >= two_pi:
        lo, n = 0.0, float(B)
    else:
        n = min(max(n, 0.0), float(B))
    ni = int(n)
    if ni <= 0:
        return
    li = int(lo) % B
    end = li + ni
    diff[row, li] += 1
    if end > B:
        diff[row, B] -= 1
        diff[row, 0] += 1
        diff[row, end - B] -= 1
    else:
        diff[row, end] -= 1


@jit
def segment(nx, ny, fx, fy, r, close, clear):
    """``index._segment`` for one box and edge -> maybe (s, l), sure (s, l)."""
    ta, tb = np.arctan2(ny, nx), np.arctan2(fy, fx)
    ea = blur(r, np.sqrt(nx * nx + ny * ny)) + EPS_ANG
    eb = blur(r, np.sqrt(fx * fx + fy * fy)) + EPS_ANG
    a = tb - ta
    rel = a - two_pi * np.floor((a + pi) * inv_two_pi)
    if rel >= 0:
        lo, hi = -ea, rel + eb
        s_len, s_off = rel - ea - eb, ea
    else:
        lo, hi = rel - eb, ea
        s_len, s_off = -rel - ea - eb, rel + eb
    m_l = 2 * two_pi if (close or hi - lo >= pi - 0.01) else hi - lo
    su_l = s_len if (clear and s_len > 0 and ea < pi and eb < pi) else -1.0
    return ta + lo, m_l, ta + s_off, su_l


@jit
def edge(gx, gy, hx, hy, hd, vx, vy, sh, near, far, off):
    """One target edge (direction v, heading offset sh) against one box (``index._strips`` and
    ``_segment``): (strip maybe, strip sure, maybe arc s, l, sure arc s, l), arcs in the memory's yaw."""
    lat = gx * vy - gy * vx
    lat_r = abs(vy) * hx + abs(vx) * hy
    ahead = gx * vx + gy * vy
    ahead_r = abs(vx) * hx + abs(vy) * hy
    sm = (max(abs(lat) - lat_r, 0.0) <= off + EPS_POS) and (ahead - ahead_r <= far + EPS_POS)
    ss = (abs(lat) + lat_r <= off - EPS_POS) and (ahead + ahead_r <= far - EPS_POS)
    cl = min(max(ahead, near), far)
    seg_d = np.sqrt(lat * lat + (ahead - cl) ** 2)
    m_s, m_l, s_s, s_l = segment(near * vx - gx, near * vy - gy, far * vx - gx, far * vy - gy, hd + EPS_POS,
                                 seg_d <= hd + 2 * EPS_POS, abs(lat) - lat_r > LINE_GAP)
    return sm, ss, m_s - sh, m_l, s_s - sh, s_l


# ---------------------------------------------------------------------------------- the classification


@jit
def planar_states(x0, x1, y0, y1, border, tgt, ux, uy, hits, steep, B,
                  half, sv, par, near, far, max_cam, off, svd, reach):
    """``index._planar_states``: state (C, B + 1), int64 (hits) or int8. ux, uy: (2T,) unit directions
    of the targets' left edges, then their right ones."""
    C, T = len(x0), len(tgt)
    w = two_pi / B
    rows = T if hits else 1
    out = np.zeros((C, B + 1), np.int64)
    mdiff = np.zeros((rows, B + 1), np.int32)
    sdiff = np.zeros((rows, B + 1), np.int32)
    for c in range(C):
        if border[c]:
            out[c, :] = TEST
            continue
        hx, hy = 0.5 * (x1[c] - x0[c]), 0.5 * (y1[c] - y0[c])
        bx, by = 0.5 * (x0[c] + x1[c]), 0.5 * (y0[c] + y1[c])
        wx, wy = x1[c] - x0[c], y1[c] - y0[c]
        hd = 0.5 * np.sqrt(wx * wx + wy * wy)
        mdiff[:, :] = 0
        sdiff[:, :] = 0
        used = False
        for t in range(T):
            xt, yt, wt = tgt[t, 0], tgt[t, 1], tgt[t, 2]
            ex = max(abs(bx - xt) - hx, 0.0)
            ey = max(abs(by - yt) - hy, 0.0)
            if not ex * ex + ey * ey <= reach * reach:
                continue
            used = True
            row = t if hits else 0
            gx, gy = bx - xt, by - yt
            ax, ay = abs(gx), abs(gy)
            dmin = np.sqrt(max(ax - hx, 0.0) ** 2 + max(ay - hy, 0.0) ** 2)
            dmax = np.sqrt((ax + hx) ** 2 + (ay + hy) ** 2)
            ok = dmin <= max_cam + EPS_POS
            ok_sure = dmax <= max_cam - EPS_POS
            # both edges: left (+ half), right (- half); no arrays (no allocation per pair)
            lsm, lss, lm_s, lm_l, ls_s, ls_l = edge(gx, gy, hx, hy, hd, ux[t], uy[t], half, near, far, off)
            rsm, rss, rm_s, rm_l, rs_s, rs_l = edge(gx, gy, hx, hy, hd, ux[T + t], uy[T + t], -half, near, far, off)
            # sure arcs
            add_arc(sdiff, row, wt - sv + EPS_ANG, 2 * sv - 2 * EPS_ANG if dmax <= svd - EPS_POS else -1.0,
                    True, B, w)
            add_arc(sdiff, row, wt - par + EPS_ANG,
                    2 * par - 2 * EPS_ANG if (ok_sure and lss and rss) else -1.0, True, B, w)
            s, ln = arc_meet(ls_s, ls_l, rs_s, rs_l)
            s = s + EPS_ANG
            ln = ln - 2 * EPS_ANG if ok_sure else -1.0
            for band in (wt + par + EPS_ANG, wt - pi + par + EPS_ANG):
                bs, bl = arc_meet(s, ln, band, pi - 2 * par - 2 * EPS_ANG)
                add_arc(sdiff, row, bs, bl, True, B, w)
            # maybe arcs
            add_arc(mdiff, row, wt - sv - EPS_ANG, 2 * sv + 2 * EPS_ANG if dmin <= svd + EPS_POS else -1.0,
                    False, B, w)
            add_arc(mdiff, row, wt - par - EPS_ANG,
                    2 * par + 2 * EPS_ANG if (ok and lsm and rsm) else -1.0, False, B, w)
            s, ln = arc_meet(lm_s, lm_l, rm_s, rm_l)
            add_arc(mdiff, row, s, ln if ok else -1.0, False, B, w)
            for e_ang in (wt + par, wt - par):
                both = (lsm or contains(lm_s, lm_l, e_ang)) and (rsm or contains(rm_s, rm_l, e_ang)) and ok
                add_arc(mdiff, row, e_ang - EPS_ANG, 2 * EPS_ANG if both else -1.0, False, B, w)
        any_maybe = False
        if used:
            for row in range(rows):
                mc, sc = 0, 0
                for b in range(B):
                    mc += mdiff[row, b]
                    sc += sdiff[row, b]
                    if mc > 0:
                        any_maybe = True
                    if sc > 0:
                        if hits:
                            if out[c, b] != TEST:
                                out[c, b] += 1
                        elif out[c, b] == 0:
                            out[c, b] = 1
                    elif mc > 0:
                        out[c, b] = TEST
        if steep:
            out[c, B] = TEST if any_maybe else REJECT
    return out


# ---------------------------------------------------------------------------------- cells


@jit
def cells(grid_cells, ix0, ix1, iy0, iy1, offset, cell):
    """``PoseGrid.occupied`` + ``index._Cells``: (pos, row_start, x0, x1, y0, y1, border) of the occupied
    cells with ix0 <= ix <= ix1, iy0 <= iy <= iy1; the boxes the same floats (int to float64, times
    the cell size, minus / plus ``EPS_POS``; border cells unbounded)."""
    span = 2 * offset
    nx = ix1 - ix0 + 1
    lo = np.empty(nx, np.int64)
    hi = np.empty(nx, np.int64)
    total = 0
    for r in range(nx):
        ix = ix0 + r
        lo[r] = np.searchsorted(grid_cells, ix * span + iy0)
        hi[r] = np.searchsorted(grid_cells, ix * span + iy1, side="right")
        total += hi[r] - lo[r]
    pos = np.empty(total, np.int64)
    row_start = np.zeros(total, np.bool_)
    x0, x1 = np.empty(total), np.empty(total)
    y0, y1 = np.empty(total), np.empty(total)
    border = np.zeros(total, np.bool_)
    i = 0
    for r in range(nx):
        if hi[r] > lo[r]:
            row_start[i] = True
        for q in range(lo[r], hi[r]):
            pos[i] = q
            cid = grid_cells[q]
            ix, iy = cid // span, cid % span
            b = ix == 0 or ix == span - 1 or iy == 0 or iy == span - 1
            border[i] = b
            if b:
                x0[i], x1[i], y0[i], y1[i] = -np.inf, np.inf, -np.inf, np.inf
            else:
                x0[i] = float(ix - offset) * cell - EPS_POS
                x1[i] = float(ix - offset + 1) * cell + EPS_POS
                y0[i] = float(iy - offset) * cell - EPS_POS
                y1[i] = float(iy - offset + 1) * cell + EPS_POS
            i += 1
    return pos, row_start, x0, x1, y0, y1, border


# ---------------------------------------------------------------------------------- runs and their frames


@jit
def gather(state, row_start, ids, pos, cell_start, bpc, keys, order):
    """``index._runs`` + ``_ranges``: (test frames, sure frames, sure frames' state). A run's first key
    lies in its first cell's slice of ``keys`` (``cell_start[pos]``), its end in its last cell's, so
    each end is searched in one cell's slice (the same position as a search of all keys)."""
    C, W = state.shape
    rs = np.empty(C * W, np.int64)        # runs: (first cell, first bin, last cell, last bin, state)
    rb = np.empty(C * W, np.int64)
    re = np.empty(C * W, np.int64)
    reb = np.empty(C * W, np.int64)
    rst = np.empty(C * W, np.int64)
    nr = 0
    cur = REJECT
    for c in range(C):
        for b in range(W):
            st = state[c, b]
            if st != cur or (b == 0 and row_start[c]):     # a run ends here
                if cur != REJECT:
                    re[nr - 1] = c if b > 0 else c - 1
                    reb[nr - 1] = b - 1 if b > 0 else W - 1
                if st != REJECT:
                    rs[nr], rb[nr], rst[nr] = c, b, st
                    nr += 1
                cur = st
    if cur != REJECT:
        re[nr - 1], reb[nr - 1] = C - 1, W - 1
    lo = np.empty(nr, np.int64)
    cnt = np.empty(nr, np.int64)
    n_test, n_sure = 0, 0
    for r in range(nr):
        ca, cb = rs[r], re[r]
        a0, a1 = cell_start[pos[ca]], cell_start[pos[ca] + 1]
        b0, b1 = cell_start[pos[cb]], cell_start[pos[cb] + 1]
        p0 = a0 + np.searchsorted(keys[a0:a1], ids[ca] * bpc + rb[r])
        p1 = b0 + np.searchsorted(keys[b0:b1], ids[cb] * bpc + reb[r] + 1)
        lo[r], cnt[r] = p0, p1 - p0
        if rst[r] == TEST:
            n_test += p1 - p0
        else:
            n_sure += p1 - p0
    test = np.empty(n_test, np.int64)
    sure = np.empty(n_sure, np.int64)
    sure_n = np.empty(n_sure, np.int64)
    it, js = 0, 0
    for r in range(nr):
        if rst[r] == TEST:
            for q in range(lo[r], lo[r] + cnt[r]):
                test[it] = order[q]
                it += 1
        else:
            for q in range(lo[r], lo[r] + cnt[r]):
                sure[js] = order[q]
                sure_n[js] = rst[r]
                js += 1
    return test, sure, sure_n


# ---------------------------------------------------------------------------------- the exact rule


@jit
def pair_meets(dx, dy, ux, uy, vx, vy, near, far, off, sin_par):
    """``fov._pair_meets`` for one element: the same floats in the same order, hence the same answer;
    no branches (the parallel case is a select, as numpy overwrites it), so loops over it vectorise."""
    den = ux * vy
    den = den - uy * vx
    dxu = dx * uy
    dxu = dxu - dy * ux
    a = dx * vy
    a = a - dy * vx
    a = a / den
    ok_near = (a >= near) if near > 0 else (a > 0)
    meets = ok_near & (a <= far) & (dxu / den > 0)
    par = (ux * vx + uy * vy > 0) & (abs(dxu) <= off) & (ux * dx + uy * dy <= far)
    return par if abs(den) <= sin_par else meets


@jit
def pair_pass(x, y, lx, ly, rx, ry, n, xt, yt, tlx, tly, trx, try_, near, far, off, sin_par, md2, sd2,
              ph, close):
    """Both edge pairs and the max_cam_dist gate of frames [0, n) against one target -> ph (uint8), and
    close: within same_view_dist (uint8). Branch-free over contiguous rows: vectorised."""
    for j in range(n):
        dx = x[j] - xt
        dy = y[j] - yt
        dist2 = dx * dx + dy * dy
        left = pair_meets(dx, dy, tlx, tly, lx[j], ly[j], near, far, off, sin_par)
        right = pair_meets(dx, dy, trx, try_, rx[j], ry[j], near, far, off, sin_par)
        ph[j] = left & right & (dist2 <= md2)
        close[j] = dist2 <= sd2


@jit
def rule(poses, memo, test, tgt, tl, tr, sure, sure_n, hits,
         near, far, off, sin_par, md2, sd2, sv):
    """The exact rule (``fov._rule``) on frames ``test`` against targets (T, 3), tl / tr (T, 2): cos / sin
    of each target's left / right edge; memory edges from the memo (rows yaw, lx, ly, rx, ry). Joined
    with the sure frames -> (frames, hits per frame, in no order; positions in ``test`` of the frames
    the memo does not hold for their yaw: not tested, to test again once the memo holds them)."""
    S, T = len(test), len(tgt)
    rows = np.empty((7, S))            # x, y, yaw, lx, ly, rx, ry of the frames the memo holds
    fr = np.empty(S, np.int64)
    stale = np.empty(S, np.int64)
    n, ns = 0, 0
    for j in range(S):
        f = test[j]
        yaw = poses[f, 2]
        if memo[f, 0] != yaw or memo[f, 1] == 0.0:        # (``_EdgeMemo.edges``)
            stale[ns] = j
            ns += 1
            continue
        rows[0, n], rows[1, n], rows[2, n] = poses[f, 0], poses[f, 1], yaw
        rows[3, n], rows[4, n], rows[5, n], rows[6, n] = memo[f, 1], memo[f, 2], memo[f, 3], memo[f, 4]
        fr[n] = f
        n += 1
    count = np.zeros(n, np.int64)
    ph = np.empty(n, np.uint8)
    close = np.empty(n, np.uint8)
    acc = np.empty(n if not hits else 0, np.int64)    # hits=False: frames accepted by the first target
    na = 0
    for t in range(T):
        if t == 1 and not hits:        # accepted frames are not tested again (~30% fewer frame-target tests)
            m = 0
            for j in range(n):
                if count[j]:
                    acc[na] = fr[j]
                    na += 1
                else:
                    if m != j:
                        for q in range(7):
                            rows[q, m] = rows[q, j]
                        fr[m] = fr[j]
                    m += 1
            n = m
            count[:n] = 0
        xt, yt, wt = tgt[t, 0], tgt[t, 1], tgt[t, 2]
        pair_pass(rows[0], rows[1], rows[3], rows[4], rows[5], rows[6], n, xt, yt, tl[t, 0], tl[t, 1],
                  tr[t, 0], tr[t, 1], near, far, off, sin_par, md2, sd2, ph, close)
        for j in range(n):
            hit = ph[j] != 0
            if not hit and close[j] != 0:      # same view: geometry.wrap_angle, (a + pi) % (2 pi) - pi
                r = np.fmod((rows[2, j] - wt) + pi, two_pi)   # exact (any implementation: the same float)
                if r != 0.0:
                    if r < 0:                  # numpy's remainder: the sign of the divisor
                        r += two_pi
                else:
                    r = 0.0
                hit = abs(r - pi) <= sv
            if hit:
                count[j] += 1
    m = 0
    for j in range(n):
        if count[j]:
            m += 1
    out = np.empty(m + na + len(sure), np.int64)
    cnt = np.empty(m + na + len(sure), np.int64)
    out[:len(sure)] = sure
    cnt[:len(sure)] = sure_n
    i = len(sure)
    for j in range(na):
        out[i] = acc[j]
        cnt[i] = 1
        i += 1
    for j in range(n):
        if count[j]:
            out[i] = fr[j]
            cnt[i] = count[j] if hits else 1
            i += 1
    return out, cnt, stale[:ns]          # unsorted (numba's sort is ~10x slower than numpy's here)


# ---------------------------------------------------------------------------------- runs of candidates (strategies)


@jit
def same_run(idx, times, pos, D, max_dt, max_step2):
    """``strategies._same_run``: bool (C - 1,), the same floats (the squared step summed axis by axis)."""
    out = np.empty(max(len(idx) - 1, 0), np.bool_)
    for j in range(len(idx) - 1):
        a, b = idx[j], idx[j + 1]
        d2 = 0.0
        for c in range(D):
            d = pos[b, c] - pos[a, c]
            d2 += d * d
        out[j] = (b - a == 1) and abs(times[b] - times[a]) <= max_dt and d2 <= max_step2
    return out
